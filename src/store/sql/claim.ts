import { knownApps } from '../../core/app-settings.js';
import { parseFrameList } from '../../core/frames.js';
import {
  pickJob,
  type DispatchCandidate,
  type LimitState,
  type WorkerProfile,
} from '../../core/policy.js';
import type { TaskAssignment } from '../../core/types.js';
import type { Dialect } from './dialect.js';
import type { Cycle } from './dispatch.js';
import {
  CANDIDATE_PAGE,
  CLAIM_TASK,
  LOCK_JOB,
  READ_LIMITS,
  RENDERING_WORKERS,
  candidateQuery,
  run,
  type Db,
  type Row,
} from './dispatch-sql.js';
import { newLeasePrefix } from './ids.js';
import { releaseLimits, takeLimits } from './limits.js';
import { json, num } from './rows.js';

/* Claims: the worker's claim of its next task inside its call (`work`, in `dispatch.ts`). */

const NO_LIMITS: ReadonlyMap<string, LimitState> = new Map();

export interface DispatchSettings {
  leaseTtlMs: number;
}

/** A worker as dispatch sees it: the policy's profile and the plugins it runs. */
export type DispatchProfile = WorkerProfile & {
  /** The built-in application plugins and those it offers (`--apps-dir`). */
  plugins: readonly string[];
};

export function profileOf(worker: Row, name: string): DispatchProfile {
  return {
    name,
    region: worker.region as string,
    pools: json<string[]>(worker.pools as string),
    groups: json<string[]>(worker.groups as string),
    plugins: [
      ...new Set([...knownApps, ...json<string[]>((worker.apps as string | null) ?? '[]')]),
    ],
  };
}

function candidateOf(row: Row): DispatchCandidate {
  return {
    id: row.id as string,
    priority: num(row.priority as number),
    submittedAt: num(row.submitted_at as number),
    pool: row.pool as string,
    secondaryPool: row.secondary_pool as string,
    group: row.grp as string,
    regions: json(row.regions as string),
    allowList: json(row.allow_list as string),
    denyList: json(row.deny_list as string),
    limits: json(row.limits as string),
    machineLimit: num(row.machine_limit as number),
    renderingWorkers: 0,
    workerOnJob: false,
    // The dispatch query already left out jobs this worker is bad for.
    workerIsBad: false,
  };
}

/** A candidate with its machine-limit counts (distinct workers rendering it now). */
async function candidateWithCounts(
  db: Db,
  dialect: Dialect,
  row: Row,
  workerName: string,
): Promise<DispatchCandidate> {
  const c = candidateOf(row);
  if (c.machineLimit > 0) {
    const rows = await run(db, dialect, RENDERING_WORKERS, [c.id]);
    c.renderingWorkers = rows.length;
    c.workerOnJob = rows.some((r) => r.worker === workerName);
  }
  return c;
}

async function readLimits(db: Db, dialect: Dialect): Promise<Map<string, LimitState>> {
  const rows = await run(db, dialect, READ_LIMITS, []);
  return new Map(
    rows.map((l) => [
      l.name as string,
      { max: num(l.max as number), inUse: num(l.in_use as number) },
    ]),
  );
}

/**
 * Claims the next task for the worker: the dispatch query (jobs with queued tasks that its
 * pools and groups serve and whose bad-worker list it is not on, in its order, a page at a
 * time) and the policy (`src/core/policy.ts`: regions, allow/deny lists, limits, machine
 * limit). What the query read may be stale by the time a job is chosen (other connections
 * claim too): the chosen job is re-checked under its lock, and a job that no longer
 * qualifies is passed over for the next one.
 */
export async function claim(
  db: Db,
  dialect: Dialect,
  now: number,
  profile: DispatchProfile,
  cycle: Cycle,
  settings: DispatchSettings,
): Promise<TaskAssignment | undefined> {
  const text = candidateQuery(
    dialect,
    profile.pools.length,
    profile.groups.length,
    profile.plugins.length,
  );
  // Read when a candidate names a limit (most jobs name none).
  let limits: Map<string, LimitState> | undefined;
  for (let offset = 0; ; offset += CANDIDATE_PAGE) {
    const page = await run(db, dialect, text, [
      ...profile.pools,
      ...profile.pools,
      ...profile.groups,
      ...profile.plugins,
      profile.name,
      ...profile.pools,
      ...profile.pools,
      offset,
    ]);
    let candidates: DispatchCandidate[] = [];
    for (const row of page)
      candidates.push(await candidateWithCounts(db, dialect, row, profile.name));
    if (!limits && candidates.some((c) => c.limits.length > 0)) {
      limits = await readLimits(db, dialect);
    }
    for (;;) {
      const chosen = pickJob(candidates, profile, limits ?? NO_LIMITS);
      if (!chosen) break;
      const row = page.find((r) => r.id === chosen.id)!;
      const got = await claimFrom(
        db,
        dialect,
        now,
        profile,
        row,
        limits ?? NO_LIMITS,
        cycle,
        settings,
      );
      if (typeof got === 'object') return got;
      // Claimed away, changed, or a limit ran out since it was read: try the next job.
      if (got === 'limit') limits = await readLimits(db, dialect);
      candidates = candidates.filter((c) => c.id !== chosen.id);
    }
    if (page.length < CANDIDATE_PAGE) return undefined;
  }
}

/**
 * Takes the limits and the first queued task of a job the policy chose, or says why it could
 * not: `gone` (the job no longer qualifies or has no queued task left) or `limit`.
 */
async function claimFrom(
  db: Db,
  dialect: Dialect,
  now: number,
  profile: WorkerProfile,
  pageRow: Row,
  limits: ReadonlyMap<string, LimitState>,
  cycle: Cycle,
  settings: DispatchSettings,
): Promise<TaskAssignment | 'gone' | 'limit'> {
  const jobId = pageRow.id as string;
  let job = pageRow;
  if (dialect === 'postgres') {
    // Re-read under the lock (see the top of `dispatch.ts`): key share, or no key update when a
    // machine limit makes this job's claims take turns.
    let [fresh] = await run(
      db,
      dialect,
      num(pageRow.machine_limit as number) > 0 ? LOCK_JOB.turns : LOCK_JOB.keyShare,
      [jobId],
    );
    if (
      fresh &&
      num(fresh.machine_limit as number) > 0 &&
      !(num(pageRow.machine_limit as number) > 0)
    ) {
      [fresh] = await run(db, dialect, LOCK_JOB.turns, [jobId]);
    }
    if (!fresh || num(fresh.n_queued as number) <= 0) return 'gone';
    if (fresh.state !== 'queued' && fresh.state !== 'rendering') return 'gone';
    const candidate = await candidateWithCounts(db, dialect, fresh, profile.name);
    if (!pickJob([candidate], profile, limits)) return 'gone';
    if (fresh.state === 'rendering' && fresh.started_at !== null) cycle.foundRendering.add(jobId);
    job = fresh;
  }
  const jobLimits = json<string[]>(job.limits as string);
  const held =
    jobLimits.length === 0 ? [] : await takeLimits(db, jobLimits, new Set(limits.keys()));
  if (!held) return 'limit';
  const leaseExpiresAt = now + settings.leaseTtlMs;
  const params = [
    profile.name,
    newLeasePrefix(jobId),
    leaseExpiresAt,
    JSON.stringify(held),
    now,
    jobId,
    jobId,
  ];
  let [task] = await run(db, dialect, CLAIM_TASK[dialect], params);
  if (!task && dialect === 'postgres') {
    // Every queued task left may be locked by claims in flight: wait for them rather than
    // pass this job over for a lower one (one of them may roll back).
    [task] = await run(db, dialect, CLAIM_TASK.postgresWaiting, params);
  }
  if (!task) {
    if (held.length > 0) await releaseLimits(db, JSON.stringify(held));
    return 'gone';
  }
  const d = cycle.delta(jobId);
  d.queued -= 1;
  d.rendering += 1;
  cycle.claimed = {
    jobId,
    taskIndex: num(task.idx as number),
    attempt: num(task.attempt as number),
    worker: profile.name,
  };
  return {
    lease: task.lease as string,
    leaseExpiresAt,
    jobId,
    jobName: job.name as string,
    taskIndex: num(task.idx as number),
    attempt: num(task.attempt as number),
    frames: parseFrameList(task.frames as string),
    plugin: job.plugin as string,
    pluginInfo: json(job.plugin_info as string),
    environment: json(job.environment as string),
    outputDirectories: json(job.output_dirs as string),
    outputFilenames: json(job.output_files as string),
    taskTimeoutSeconds: num(job.task_timeout_s as number),
  };
}
