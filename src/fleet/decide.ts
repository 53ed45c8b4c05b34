/**
 * The scaler's decision, as a pure function over a snapshot of the farm (no I/O, no clock
 * but the one it is given): how many machines each fleet should have, which to launch and
 * which members to drain, and which work no fleet can run.
 *
 * Demand uses the scheduler's own policy (`ineligibility` in `src/core/policy.ts`): a fleet
 * never grows for queued work its workers could not take (unlike Deadline's Spot Event
 * Plugin, which counts every queued task of a group).
 */
import type { Fleet, FleetDecision, UnservedWork } from '../core/fleet.js';
import {
  ineligibility,
  type DispatchCandidate,
  type Ineligibility,
  type LimitState,
  type WorkerProfile,
} from '../core/policy.js';

/** A job with dispatchable tasks, as the scaler sees it. */
export interface DemandJob {
  /** The policy's view of the job; worker-specific fields are filled per worker. */
  job: Omit<DispatchCandidate, 'workerOnJob' | 'workerIsBad'>;
  /** Tasks queued now (dispatchable: the job is queued or rendering, its tasks queued). */
  queued: number;
  /** Of those, tasks interrupted often enough to prefer on-demand capacity. */
  preferOnDemand: number;
  /** Where the job's data is (its first region, or its output folders' GFS site). */
  dataRegion: string | undefined;
  badWorkers: readonly string[];
  /** Workers rendering the job now. */
  renderingOn: ReadonlySet<string>;
}

/** A registered worker (a fleet member or not). */
export interface FarmWorker {
  profile: WorkerProfile;
  slots: number;
  running: number;
  /** Idle, enabled and not draining: it could take a task now. */
  available: boolean;
  /** The fleet it is a member of. */
  fleet: string | undefined;
  draining: boolean;
  /** When it last finished a task (or registered): idle shutdown counts from here. */
  idleSince: number;
}

export interface FleetSnapshot {
  fleet: Fleet;
  /** Machines launched whose worker has not registered yet. */
  booting: number;
  /** Machines launched in the last minute (the scale-out rate). */
  launchedLastMinute: number;
  /** Why it may not launch now (paused, provider missing, backing off), or undefined. */
  blocked: string | undefined;
}

export interface ScalerSnapshot {
  now: number;
  jobs: readonly DemandJob[];
  workers: readonly FarmWorker[];
  fleets: readonly FleetSnapshot[];
  limits: ReadonlyMap<string, LimitState>;
}

export interface ScalerPlan {
  decisions: FleetDecision[];
  unserved: UnservedWork[];
}

/** The worker profile a new machine of `fleet` registers with (its name is not known yet). */
export function fleetProfile(fleet: Fleet): WorkerProfile {
  return {
    name: `${fleet.name}-*`,
    region: fleet.region,
    pools: fleet.pools,
    groups: fleet.groups,
  };
}

/** Why a new machine of `fleet` could not take a task of `job` now, or undefined. */
export function fleetIneligibility(
  d: DemandJob,
  fleet: Fleet,
  limits: ReadonlyMap<string, LimitState>,
): Ineligibility | undefined {
  // A new machine is on no list yet: an allow-list names existing workers only, a deny-list
  // and the bad-worker list cannot name it, and it renders nothing of the job yet.
  if (d.job.allowList.length > 0) return 'allow-list';
  return ineligibility(
    { ...d.job, workerOnJob: false, workerIsBad: false },
    fleetProfile(fleet),
    limits,
  );
}

/** Tasks of `d` that may start now at all: limits' free units and the machine limit bound them. */
function startable(d: DemandJob, limits: ReadonlyMap<string, LimitState>): number {
  let n = d.queued;
  for (const name of d.job.limits) {
    const limit = limits.get(name);
    if (limit) n = Math.min(n, Math.max(0, limit.max - limit.inUse));
  }
  return n;
}

/**
 * Fleet preference for a job: the one in the job's data region, then (for tasks interrupted
 * too often) on-demand capacity, then the cheaper, then the one with room left.
 */
function rankFleets(
  d: DemandJob,
  fleets: readonly FleetSnapshot[],
  room: ReadonlyMap<string, number>,
  onDemandFirst: boolean,
): FleetSnapshot[] {
  const key = (f: FleetSnapshot) => [
    onDemandFirst && f.fleet.capacity !== 'on-demand' ? 1 : 0,
    d.dataRegion !== undefined && f.fleet.region !== d.dataRegion ? 1 : 0,
    f.fleet.costPerHour ?? 0,
    (room.get(f.fleet.name) ?? 0) > 0 ? 0 : 1,
  ];
  return [...fleets].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
    return a.fleet.name < b.fleet.name ? -1 : 1;
  });
}

/** Most machines a fleet may have: its max, and what its cost cap pays for. */
export function fleetCeiling(fleet: Fleet): number {
  let ceiling = fleet.max;
  if (
    fleet.costCapPerHour !== undefined &&
    fleet.costPerHour !== undefined &&
    fleet.costPerHour > 0
  ) {
    ceiling = Math.min(ceiling, Math.floor(fleet.costCapPerHour / fleet.costPerHour));
  }
  return Math.max(0, ceiling);
}

/** Decides every fleet's target, launches and drains from one snapshot of the farm. */
export function decide(s: ScalerSnapshot): ScalerPlan {
  const limits = new Map([...s.limits].map(([k, v]) => [k, { ...v }]));
  const members = new Map<string, FarmWorker[]>();
  for (const f of s.fleets) members.set(f.fleet.name, []);
  for (const w of s.workers) if (w.fleet) members.get(w.fleet)?.push(w);

  // Free slots of workers outside the fleets that could take a task now: each job uses them
  // first, as the scheduler would hand its tasks to them. (Idle members are part of their
  // fleet's capacity: the fleet's target counts them.)
  const free = new Map<string, number>();
  for (const w of s.workers) {
    if (w.available && !w.fleet) free.set(w.profile.name, Math.max(0, w.slots - w.running));
  }

  // Room per fleet, in machines, before this decision.
  const room = new Map<string, number>();
  const live = (f: FleetSnapshot) =>
    (members.get(f.fleet.name) ?? []).filter((w) => !w.draining).length + f.booting;
  for (const f of s.fleets) room.set(f.fleet.name, Math.max(0, fleetCeiling(f.fleet) - live(f)));

  // Demand in tasks per fleet, and work no fleet can take.
  const demand = new Map<string, number>();
  const unserved: UnservedWork[] = [];
  const order = [...s.jobs].sort(
    (a, b) => b.job.priority - a.job.priority || a.job.submittedAt - b.job.submittedAt,
  );
  for (const d of order) {
    let left = startable(d, limits);
    if (left === 0) continue;
    // Machine limit: more workers than it allows add nothing.
    let workersLeft =
      d.job.machineLimit > 0 ? Math.max(0, d.job.machineLimit - d.renderingOn.size) : Infinity;
    for (const w of s.workers) {
      if (left === 0) break;
      const slots = free.get(w.profile.name) ?? 0;
      if (slots === 0) continue;
      const onJob = d.renderingOn.has(w.profile.name);
      if (!onJob && workersLeft === 0) continue;
      const why = ineligibility(
        { ...d.job, workerOnJob: onJob, workerIsBad: d.badWorkers.includes(w.profile.name) },
        w.profile,
        limits,
      );
      if (why) continue;
      const take = Math.min(slots, left);
      free.set(w.profile.name, slots - take);
      left -= take;
      if (!onJob) workersLeft--;
    }
    if (left === 0) continue;

    const eligible: FleetSnapshot[] = [];
    const reasons: string[] = [];
    for (const f of s.fleets) {
      const why = fleetIneligibility(d, f.fleet, limits);
      if (why) reasons.push(`${f.fleet.name}: ${why}`);
      else eligible.push(f);
    }
    if (eligible.length === 0) {
      unserved.push({
        jobId: d.job.id,
        tasks: left,
        reason:
          s.fleets.length === 0
            ? 'no fleet is defined'
            : `no fleet may run it (${reasons.slice(0, 8).join('; ')})`,
      });
      continue;
    }
    // Tasks wanting on-demand capacity first, then the rest.
    const wantOnDemand = Math.min(left, d.preferOnDemand);
    for (const [count, onDemandFirst] of [
      [wantOnDemand, true],
      [left - wantOnDemand, false],
    ] as const) {
      let n = count;
      const ranked = rankFleets(d, eligible, room, onDemandFirst);
      for (const f of ranked) {
        if (n === 0 || workersLeft === 0) break;
        const name = f.fleet.name;
        const slots = f.fleet.slots;
        const machines = Math.min(room.get(name) ?? 0, Math.ceil(n / slots), workersLeft);
        // The last fleet in the order takes what no fleet has room for (its target is
        // clamped to its max below, and the reason says so).
        const last = f === ranked.at(-1);
        const cap = workersLeft === Infinity ? n : Math.min(n, workersLeft * slots);
        const take = last ? cap : Math.min(cap, machines * slots);
        demand.set(name, (demand.get(name) ?? 0) + take);
        room.set(name, Math.max(0, (room.get(name) ?? 0) - Math.ceil(take / slots)));
        n -= take;
        if (workersLeft !== Infinity) workersLeft -= Math.ceil(take / slots);
      }
    }
  }

  const decisions = s.fleets.map((f) =>
    decideFleet(s.now, f, members.get(f.fleet.name) ?? [], demand.get(f.fleet.name) ?? 0),
  );
  return { decisions, unserved };
}

/** One fleet's target from its demand (in tasks) and its members. */
function decideFleet(
  now: number,
  f: FleetSnapshot,
  members: readonly FarmWorker[],
  demandTasks: number,
): FleetDecision {
  const fleet = f.fleet;
  const active = members.filter((w) => !w.draining);
  const busy = active.filter((w) => w.running > 0);
  const idle = active.filter((w) => w.running === 0);
  const draining = members.length - active.length;
  const needed = Math.ceil(demandTasks / fleet.slots);
  const ceiling = fleetCeiling(fleet);
  const want = busy.length + needed + fleet.standby;
  const target = Math.max(Math.min(fleet.min, ceiling), Math.min(want, ceiling));
  const current = active.length + f.booting;
  const reasons: string[] = [
    `demand ${demandTasks} task${demandTasks === 1 ? '' : 's'} → ${needed} machine${needed === 1 ? '' : 's'}`,
  ];
  if (fleet.standby > 0) reasons.push(`standby ${fleet.standby}`);
  if (fleet.min > 0 && target === Math.min(fleet.min, ceiling) && want < target) {
    reasons.push(`min ${fleet.min}`);
  }
  if (want > ceiling) {
    reasons.push(
      ceiling < fleet.max ? `capped at ${ceiling} by the cost cap` : `capped at max ${fleet.max}`,
    );
  }
  let launch = 0;
  const drain: string[] = [];
  if (target > current) {
    const rate = Math.max(0, fleet.scaleOutPerMinute - f.launchedLastMinute);
    launch = Math.min(target - current, rate);
    if (f.blocked) {
      reasons.push(`launches nothing: ${f.blocked}`);
      launch = 0;
    } else if (launch < target - current) {
      reasons.push(`scale-out rate ${fleet.scaleOutPerMinute}/min`);
    }
  } else if (target < current) {
    // Above the ceiling: drain idle members first, then busy ones (they finish their task).
    const over = Math.max(0, current - ceiling);
    const byIdle = [...idle].sort((a, b) => a.idleSince - b.idleSince);
    for (const w of byIdle) {
      if (drain.length >= over) break;
      drain.push(w.profile.name);
    }
    for (const w of busy) {
      if (drain.length >= over) break;
      drain.push(w.profile.name);
    }
    if (over > 0) reasons.push(`above the ceiling ${ceiling}: drain ${drain.length}`);
    // Within the ceiling: idle members whose idle time is up, longest idle first.
    const surplus = current - target;
    for (const w of byIdle) {
      if (drain.length >= surplus) break;
      if (drain.includes(w.profile.name)) continue;
      if (now - w.idleSince >= fleet.idleShutdownS * 1000) drain.push(w.profile.name);
    }
    if (drain.length > 0 && over === 0) {
      reasons.push(`idle ≥ ${fleet.idleShutdownS}s: drain ${drain.join(', ')}`);
    } else if (drain.length === 0) {
      reasons.push(`${surplus} above target, none idle ${fleet.idleShutdownS}s yet`);
    }
  }
  if (f.blocked && launch === 0 && !reasons.some((r) => r.startsWith('launches nothing'))) {
    reasons.push(f.blocked);
  }
  return {
    fleet: fleet.name,
    at: now,
    demand: demandTasks,
    idle: idle.length,
    busy: busy.length,
    booting: f.booting,
    draining,
    target,
    launch,
    drain,
    reason: reasons.join('; '),
  };
}
