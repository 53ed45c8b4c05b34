import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Fleet, FleetDecision, FleetMachine, UnservedWork } from '../core/fleet.js';
import type { ConfigValues } from '../core/plugin-config.js';
import type { Worker } from '../core/types.js';
import type { Store } from '../store/contract.js';
import { decide, type DemandJob, type FarmWorker, type FleetSnapshot } from './decide.js';
import { ProviderError, workerName, type Machine } from './provider.js';
import type { FleetService } from './service.js';

/**
 * The scaler's reconcile loop (issue 12): on the manager holding the `scaler` lease, while
 * the scaler plugin is Global, it looks every `tickMs` (and at once when an event wakes it):
 *
 * 1. what the providers run (`list`, every `listEveryMs`): machines of this farm it does not
 *    know are adopted when their fleet exists (a manager restarted between launch and
 *    record) and terminated when it does not (orphans); machines it knows that are gone are
 *    marked terminated;
 * 2. machines whose worker registered become `running`; machines that never registered
 *    within the timeout are terminated and counted, and a fleet with too many such failures
 *    in a row is paused with the reason;
 * 3. draining members whose tasks have ended are terminated (a busy worker is never
 *    stopped); members whose worker went offline (interrupted, crashed) are terminated;
 * 4. `decide` over a snapshot of the farm; launches and drains carried out; every decision
 *    that changes something recorded as a `fleet.decision` event with its inputs.
 *
 * Provider errors are backed off per fleet (5 s doubling to 5 min), recorded as
 * `fleet.error`, and never thrown out of the loop: dispatch never waits for a provider.
 */
export interface ScalerOptions {
  store: Store;
  fleets: FleetService;
  log: Logger;
  /** The scaler plugin's state and configuration now (`undefined`: not loaded). */
  plugin: () => { state: string; config: ConfigValues } | undefined;
  /** Saves a configuration value of the plugin (the farm id made up on the first start). */
  saveConfig: (config: Record<string, string>) => Promise<void>;
  /** Whether this manager leads the scaler now (several managers on one store). */
  lead: () => Promise<boolean>;
  /** The manager addresses launched workers talk to. */
  managerUrls: () => readonly string[];
  /** A worker token acting only as `pattern`, or '' when the manager has no authentication. */
  createWorkerToken: (name: string, pattern: string) => Promise<string>;
  tickMs?: number;
  listEveryMs?: number;
  now?: () => number;
}

const BACKOFF_MIN_MS = 5_000;
const BACKOFF_MAX_MS = 5 * 60_000;
/** A machine the provider no longer lists is taken as gone only after this (eventual lists). */
const LIST_GRACE_MS = 60_000;
/** A member whose worker is offline this long is terminated. */
const OFFLINE_GRACE_MS = 5_000;

interface Backoff {
  until: number;
  delay: number;
  message: string;
}

export class Scaler {
  readonly #o: ScalerOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #again = false;
  #lastList = 0;
  #farmId = '';
  readonly #tokens = new Map<string, string>();
  readonly #backoff = new Map<string, Backoff>();
  /** Per worker, when the scaler last saw it busy (idle shutdown counts from there). */
  readonly #lastBusy = new Map<string, number>();
  /** The last decision recorded per fleet, to log only changes. */
  readonly #recorded = new Map<string, string>();
  #recordedUnserved = '';

  constructor(options: ScalerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    const tick = () => {
      if (this.#stopped) return;
      this.wake();
      this.#timer = setTimeout(tick, this.#o.tickMs ?? 1000);
      this.#timer.unref();
    };
    tick();
  }

  /** Reconciles soon (an event changed the demand); at most one round runs at a time. */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#round().finally(() => {
      this.#running = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        this.wake();
      }
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  async #round(): Promise<void> {
    try {
      const plugin = this.#o.plugin();
      if (plugin?.state !== 'global') {
        this.#o.fleets.latest = undefined;
        return;
      }
      if (!(await this.#o.lead())) {
        this.#o.fleets.latest = undefined;
        return;
      }
      await this.reconcile(plugin.config);
    } catch (err) {
      this.#o.log.error({ err }, 'scaler round failed; trying again');
    }
  }

  /** One reconciliation (exposed for tests that drive it step by step). */
  async reconcile(config: ConfigValues): Promise<void> {
    const store = this.#o.store;
    const now = this.#now();
    const farm = await this.#farm(config);
    const fleets = new Map((await store.fleets.listFleets()).map((f) => [f.name, f]));
    let machines = await store.fleets.listMachines({ live: true });
    let workers = await store.listWorkers();

    if (now - this.#lastList >= (this.#o.listEveryMs ?? 10_000)) {
      this.#lastList = now;
      await this.#sync(farm, fleets, machines, now);
      machines = await store.fleets.listMachines({ live: true });
    }

    const byName = new Map(workers.map((w) => [w.name, w]));
    const registerTimeoutMs = Number(config.registerTimeout ?? 600) * 1000;
    const pauseAfter = Number(config.pauseAfterFailures ?? 5);
    let changed = false;
    for (const m of machines) {
      const w = byName.get(m.worker);
      const fleet = fleets.get(m.fleet);
      if (m.state === 'booting') {
        if (w && w.state !== 'offline' && w.registeredAt >= m.launchedAt - 60_000) {
          await store.fleets.setMachineState(m.provider, m.id, 'running', { at: w.registeredAt });
          changed = true;
        } else if (now - m.launchedAt > registerTimeoutMs) {
          await this.#terminate(
            farm,
            m,
            `its worker did not register within ${registerTimeoutMs / 1000}s`,
          );
          changed = true;
          if (fleet && !fleet.pausedReason) await this.#maybePause(fleet, pauseAfter);
        }
      } else if (m.state === 'draining') {
        if (w?.enabled) {
          // An admin enabled it again: it is a member like the others, not to be stopped.
          await store.fleets.setMachineState(m.provider, m.id, 'running', {
            at: m.registeredAt ?? w.registeredAt,
          });
          changed = true;
        } else if (!w || w.runningTasks.length === 0) {
          await this.#terminate(farm, m, null);
          changed = true;
        }
      } else if (m.state === 'running') {
        if (
          !w ||
          ((w.state === 'offline' || w.state === 'stalled') &&
            now - w.lastSeenAt > OFFLINE_GRACE_MS)
        ) {
          await this.#terminate(farm, m, `its worker went ${w?.state ?? 'away'}`);
          changed = true;
        }
      }
    }
    if (changed) {
      machines = await store.fleets.listMachines({ live: true });
      workers = await store.listWorkers();
      // A fleet paused just now (machines that never registered) must not launch again in
      // this same round.
      for (const f of await store.fleets.listFleets()) fleets.set(f.name, f);
    }

    const snapshot = await this.#snapshot(config, fleets, machines, workers, now);
    const plan = decide(snapshot);
    const decisions = new Map<string, FleetDecision>();
    for (const d of plan.decisions) {
      const fleet = fleets.get(d.fleet)!;
      if (d.launch > 0) await this.#launch(farm, fleet, d);
      for (const worker of d.drain) await this.#drain(fleet, worker, machines, d);
      decisions.set(d.fleet, d);
      await this.#record(d);
    }
    await this.#recordUnserved(plan.unserved, now);
    this.#o.fleets.latest = { decisions, unserved: plan.unserved };
  }

  /** The farm id (tag `drover:farm`): configured, or made up once and saved. */
  async #farm(config: ConfigValues): Promise<string> {
    const configured = typeof config.farmId === 'string' ? config.farmId : '';
    if (configured) return (this.#farmId = configured);
    if (!this.#farmId) {
      this.#farmId = `farm-${randomBytes(6).toString('hex')}`;
      await this.#o.saveConfig({ farmId: this.#farmId });
    }
    return this.#farmId;
  }

  /** Adopts, sweeps and forgets machines by what the providers list. */
  async #sync(
    farm: string,
    fleets: ReadonlyMap<string, Fleet>,
    machines: readonly FleetMachine[],
    now: number,
  ): Promise<void> {
    for (const provider of this.#o.fleets.providers.values()) {
      let listed;
      try {
        listed = await provider.list(farm);
      } catch (err) {
        await this.#providerError(`provider:${provider.kind}`, provider.kind, err, now);
        continue;
      }
      const known = new Map(
        machines.filter((m) => m.provider === provider.kind).map((m) => [m.id, m]),
      );
      const seen = new Set<string>();
      for (const m of listed) {
        seen.add(m.id);
        if (known.has(m.id) || m.farm !== farm) continue;
        const fleet = fleets.get(m.fleet);
        if (!fleet || fleet.provider !== provider.kind) {
          this.#o.log.warn({ machine: m.id, fleet: m.fleet }, 'terminating an orphan machine');
          await this.#call(`provider:${provider.kind}`, provider.kind, () =>
            provider.terminate(farm, [m.id]),
          );
          await this.#o.store.appendEvent({
            type: 'fleet.terminated',
            data: {
              fleet: m.fleet,
              machines: [m.id],
              reason: 'orphan: tagged with this farm, its fleet unknown',
            },
          });
          continue;
        }
        await this.#o.store.fleets.recordMachines([bootingMachine(fleet, provider.kind, m)], {
          type: 'fleet.launched',
          data: { fleet: m.fleet, reason: 'adopted: running, tagged with this farm' },
        });
      }
      for (const m of known.values()) {
        if (!seen.has(m.id) && now - m.launchedAt > LIST_GRACE_MS) {
          await this.#o.store.fleets.setMachineState(provider.kind, m.id, 'terminated', {
            failure: m.state === 'draining' ? undefined : 'the provider no longer lists it',
          });
          await this.#o.store.appendEvent({
            type: 'fleet.terminated',
            worker: m.worker,
            data: { fleet: m.fleet, machines: [m.id], reason: 'the provider no longer lists it' },
          });
        }
      }
    }
  }

  async #snapshot(
    config: ConfigValues,
    fleets: ReadonlyMap<string, Fleet>,
    machines: readonly FleetMachine[],
    workers: readonly Worker[],
    now: number,
  ) {
    const store = this.#o.store;
    const memberOf = new Map(machines.map((m) => [m.worker, m]));
    const farmWorkers: FarmWorker[] = [];
    const renderingOn = new Map<string, Set<string>>();
    for (const w of workers) {
      for (const t of w.runningTasks) {
        const jobId = t.slice(0, t.lastIndexOf(':'));
        let set = renderingOn.get(jobId);
        if (!set) renderingOn.set(jobId, (set = new Set()));
        set.add(w.name);
      }
      if (w.state === 'offline' || w.state === 'stalled') continue;
      const machine = memberOf.get(w.name);
      // Seen busy now, or seen for the first time: idle shutdown counts from here (within
      // one tick of the last finished task; after a manager restart, from the restart).
      if (w.runningTasks.length > 0 || !this.#lastBusy.has(w.name)) this.#lastBusy.set(w.name, now);
      farmWorkers.push({
        profile: { name: w.name, region: w.region, pools: w.pools, groups: w.groups },
        slots: w.slots,
        running: w.runningTasks.length,
        available: w.enabled && machine?.state !== 'draining' && w.runningTasks.length < w.slots,
        fleet: machine && machine.state !== 'booting' ? machine.fleet : undefined,
        draining: machine?.state === 'draining',
        idleSince: this.#lastBusy.get(w.name)!,
      });
    }
    const limits = new Map((await store.listLimits()).map((l) => [l.name, l]));
    const onDemand = await store.fleets.interruptedQueuedTasks(
      Number(config.interruptionsBeforeOnDemand ?? 2),
    );
    const mappings = await store.listPathMappings();
    const jobs: DemandJob[] = [];
    for (const job of await store.listJobs({ states: ['queued', 'rendering'], limit: 1000 })) {
      if (job.counts.queued === 0) continue;
      const dataRegion =
        job.regions[0] ??
        mappings.find(
          (r) => r.region !== '' && job.outputDirectories.some((d) => d.startsWith(r.replacement)),
        )?.region;
      jobs.push({
        job: {
          id: job.id,
          priority: job.priority,
          submittedAt: job.submittedAt,
          pool: job.pool,
          secondaryPool: job.secondaryPool,
          group: job.group,
          regions: job.regions,
          allowList: job.allowList,
          denyList: job.denyList,
          limits: job.limits,
          machineLimit: job.machineLimit,
          renderingWorkers: renderingOn.get(job.id)?.size ?? 0,
        },
        queued: job.counts.queued,
        preferOnDemand: onDemand.get(job.id) ?? 0,
        dataRegion,
        badWorkers: job.badWorkers,
        renderingOn: renderingOn.get(job.id) ?? new Set(),
      });
    }
    const fleetSnaps: FleetSnapshot[] = [...fleets.values()].map((fleet) => {
      const mine = machines.filter((m) => m.fleet === fleet.name);
      const backoff = this.#backoff.get(fleet.name);
      const provider = this.#o.fleets.providers.get(fleet.provider);
      return {
        fleet,
        booting: mine.filter((m) => m.state === 'booting').length,
        launchedLastMinute: mine.filter((m) => now - m.launchedAt < 60_000).length,
        blocked: fleet.pausedReason
          ? `paused: ${fleet.pausedReason}`
          : !provider
            ? `provider ${fleet.provider} is not available on this manager`
            : backoff && backoff.until > now
              ? `backing off until ${new Date(backoff.until).toISOString()} after: ${backoff.message}`
              : undefined,
      };
    });
    return { now, jobs, workers: farmWorkers, fleets: fleetSnaps, limits };
  }

  async #launch(farm: string, fleet: Fleet, d: FleetDecision): Promise<void> {
    const provider = this.#o.fleets.providers.get(fleet.provider)!;
    const clientToken = `${fleet.name}-${randomBytes(8).toString('hex')}`;
    const token = await this.#token(fleet.name, provider.machineIdPrefix);
    const settings = provider.settingsSchema.parse(fleet.settings);
    const result = await this.#call(fleet.name, fleet.provider, () =>
      provider.launch({
        farm,
        fleet: fleet.name,
        region: fleet.region,
        count: d.launch,
        clientToken,
        capacity: fleet.capacity,
        boot: {
          managerUrls: this.#o.managerUrls(),
          token,
          fleet: fleet.name,
          region: fleet.region,
          pools: fleet.pools,
          groups: fleet.groups,
          slots: fleet.slots,
        },
        settings,
      }),
    );
    if (!result) return;
    await this.#o.store.fleets.recordMachines(
      result.machines.map((m) => bootingMachine(fleet, fleet.provider, m)),
      {
        type: 'fleet.launched',
        data: { fleet: fleet.name, asked: d.launch, clientToken, reason: d.reason },
      },
    );
    if (result.errors.length > 0) {
      const first = result.errors[0]!;
      await this.#providerError(
        fleet.name,
        fleet.provider,
        new ProviderError(first.code, first.message, true),
        this.#now(),
      );
    } else {
      this.#backoff.delete(fleet.name);
    }
  }

  /** Marks a member draining: its worker takes no new task (disabled) and stops when idle. */
  async #drain(
    fleet: Fleet,
    worker: string,
    machines: readonly FleetMachine[],
    d: FleetDecision,
  ): Promise<void> {
    const m = machines.find((x) => x.worker === worker && x.fleet === fleet.name);
    if (!m) return;
    // Disabled first, in its own transaction: a claim checks `enabled` in the same
    // transaction as it takes a task, so from here on the worker gets nothing new.
    await this.#o.store.setWorkerEnabled(worker, false);
    await this.#o.store.fleets.setMachineState(m.provider, m.id, 'draining');
    await this.#o.store.appendEvent({
      type: 'fleet.draining',
      worker,
      data: { fleet: fleet.name, machine: m.id, reason: d.reason },
    });
  }

  async #terminate(farm: string, m: FleetMachine, failure: string | null): Promise<void> {
    const provider = this.#o.fleets.providers.get(m.provider);
    if (provider) {
      const ok = await this.#call(m.fleet, m.provider, async () => {
        await provider.terminate(farm, [m.id]);
        return true;
      });
      if (!ok) return;
    }
    await this.#o.store.fleets.setMachineState(m.provider, m.id, 'terminated', {
      ...(failure ? { failure } : {}),
    });
    await this.#o.store.appendEvent({
      type: 'fleet.terminated',
      worker: m.worker,
      data: {
        fleet: m.fleet,
        machines: [m.id],
        reason: failure ?? 'drained: idle, its tasks ended',
      },
    });
    this.#lastBusy.delete(m.worker);
  }

  /** Pauses a fleet whose last `pauseAfter` machines all failed to register. */
  async #maybePause(fleet: Fleet, pauseAfter: number): Promise<void> {
    const recent = await this.#o.store.fleets.listMachines({
      fleet: fleet.name,
      limit: pauseAfter,
    });
    if (
      recent.length >= pauseAfter &&
      recent.every((m) => m.state === 'terminated' && m.registeredAt === null && m.failure)
    ) {
      await this.#o.store.fleets.pauseFleet(
        fleet.name,
        `the last ${pauseAfter} machines never registered (${recent[0]!.failure}); check the fleet's settings, then resume it`,
      );
    }
  }

  /** The fleet's worker token: it acts only as `<fleet>-<machine id prefix>*`. */
  async #token(fleet: string, machineIdPrefix: string): Promise<string> {
    const pattern = `${workerName(fleet, machineIdPrefix)}*`;
    let token = this.#tokens.get(pattern);
    if (token === undefined) {
      token = await this.#o.createWorkerToken(
        `fleet-${fleet}-${randomBytes(3).toString('hex')}`,
        pattern,
      );
      this.#tokens.set(pattern, token);
    }
    return token;
  }

  /** Runs a provider call; an error is backed off and recorded, never thrown. */
  async #call<T>(key: string, provider: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      await this.#providerError(key, provider, err, this.#now());
      return undefined;
    }
  }

  async #providerError(key: string, provider: string, err: unknown, now: number): Promise<void> {
    const code = err instanceof ProviderError ? err.code : 'error';
    const message = err instanceof Error ? err.message : String(err);
    const prev = this.#backoff.get(key);
    const delay = Math.min(BACKOFF_MAX_MS, prev ? prev.delay * 2 : BACKOFF_MIN_MS);
    this.#backoff.set(key, { until: now + delay, delay, message: `${code}: ${message}` });
    this.#o.log.warn({ fleet: key, provider, code, message, retryInMs: delay }, 'provider error');
    await this.#o.store.appendEvent({
      type: 'fleet.error',
      data: {
        fleet: key.startsWith('provider:') ? '' : key,
        provider,
        code,
        message: message.slice(0, 2000),
        retryInMs: delay,
      },
    });
  }

  /** Records a decision when it differs from the last one recorded for its fleet. */
  async #record(d: FleetDecision): Promise<void> {
    const { at: _at, ...rest } = d;
    const key = JSON.stringify(rest);
    if (this.#recorded.get(d.fleet) === key) return;
    this.#recorded.set(d.fleet, key);
    await this.#o.store.appendEvent({ type: 'fleet.decision', data: { ...d } });
  }

  async #recordUnserved(unserved: UnservedWork[], now: number): Promise<void> {
    const key = JSON.stringify(unserved);
    if (key === this.#recordedUnserved) return;
    this.#recordedUnserved = key;
    await this.#o.store.appendEvent({
      type: 'fleet.decision',
      data: { fleet: '', at: now, unserved },
    });
  }
}

/** A machine launched or adopted, as the store records it: booting until its worker registers. */
function bootingMachine(fleet: Fleet, provider: string, m: Machine): FleetMachine {
  return {
    id: m.id,
    fleet: fleet.name,
    provider,
    worker: workerName(fleet.name, m.id),
    state: 'booting',
    capacity: m.capacity,
    costPerHour: fleet.costPerHour ?? null,
    launchedAt: m.launchedAt,
    registeredAt: null,
    terminatedAt: null,
    failure: null,
  };
}
