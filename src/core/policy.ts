/**
 * The scheduling policy, as plain functions over data. The store's dispatch query does the
 * coarse filtering and ordering in SQL for speed; these functions are the definition both
 * must agree with, and they decide the rules SQL does not see (allow/deny lists, limits,
 * machine limit).
 *
 * Order for one worker: its pool order (primary pool, then secondary pool, then the `none`
 * pool), then job priority (high first), then submission time (old first), then job id.
 * Within a job, tasks go in task order.
 */

export const NO_POOL = 'none';
export const NO_GROUP = 'none';

export interface WorkerProfile {
  name: string;
  region: string;
  /** Ordered: the first pool is served first. */
  pools: readonly string[];
  groups: readonly string[];
}

export interface DispatchCandidate {
  id: string;
  priority: number;
  submittedAt: number;
  pool: string;
  secondaryPool: string;
  group: string;
  regions: readonly string[];
  allowList: readonly string[];
  denyList: readonly string[];
  limits: readonly string[];
  machineLimit: number;
  /** Distinct workers rendering the job now. */
  renderingWorkers: number;
  /** Whether this worker is one of them (it then adds nothing to the machine count). */
  workerOnJob: boolean;
  /** Whether this worker is on the job's bad-worker list. */
  workerIsBad: boolean;
}

export interface LimitState {
  max: number;
  inUse: number;
}

/**
 * Where a job stands in a worker's pool order (lower first), or undefined when the worker
 * does not serve the job's pools. Primary pools come first in the worker's order, then
 * secondary pools in the worker's order, then jobs in no pool.
 */
export function poolRank(
  job: Pick<DispatchCandidate, 'pool' | 'secondaryPool'>,
  worker: Pick<WorkerProfile, 'pools'>,
): number | undefined {
  const n = worker.pools.length;
  const primary = worker.pools.indexOf(job.pool);
  if (primary >= 0) return primary;
  if (job.secondaryPool !== '') {
    const secondary = worker.pools.indexOf(job.secondaryPool);
    if (secondary >= 0) return n + secondary;
  }
  if (job.pool === NO_POOL || job.pool === '') return 2 * n;
  return undefined;
}

export type Ineligibility =
  | 'pool'
  | 'group'
  | 'region'
  | 'allow-list'
  | 'deny-list'
  | 'bad-worker'
  | 'machine-limit'
  | 'limit';

/** Why `worker` may not take a task of `job` now, or undefined when it may. */
export function ineligibility(
  job: DispatchCandidate,
  worker: WorkerProfile,
  limits: ReadonlyMap<string, LimitState>,
): Ineligibility | undefined {
  if (poolRank(job, worker) === undefined) return 'pool';
  if (job.group !== NO_GROUP && job.group !== '' && !worker.groups.includes(job.group)) {
    return 'group';
  }
  if (job.regions.length > 0 && !job.regions.includes(worker.region)) return 'region';
  if (job.allowList.length > 0 && !job.allowList.includes(worker.name)) return 'allow-list';
  if (job.denyList.includes(worker.name)) return 'deny-list';
  if (job.workerIsBad) return 'bad-worker';
  if (job.machineLimit > 0 && !job.workerOnJob && job.renderingWorkers >= job.machineLimit) {
    return 'machine-limit';
  }
  for (const name of job.limits) {
    const limit = limits.get(name);
    // A limit nobody has defined does not hold anything back (see README: Limits).
    if (limit && limit.inUse >= limit.max) return 'limit';
  }
  return undefined;
}

/** Orders candidates for one worker: pool order, priority, age, id. */
export function compareCandidates(
  a: DispatchCandidate,
  b: DispatchCandidate,
  worker: WorkerProfile,
): number {
  const ra = poolRank(a, worker) ?? Number.MAX_SAFE_INTEGER;
  const rb = poolRank(b, worker) ?? Number.MAX_SAFE_INTEGER;
  if (ra !== rb) return ra - rb;
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.submittedAt !== b.submittedAt) return a.submittedAt - b.submittedAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The job `worker` should take its next task from, or undefined when none is eligible. */
export function pickJob(
  candidates: readonly DispatchCandidate[],
  worker: WorkerProfile,
  limits: ReadonlyMap<string, LimitState>,
): DispatchCandidate | undefined {
  const sorted = [...candidates].sort((a, b) => compareCandidates(a, b, worker));
  return sorted.find((job) => ineligibility(job, worker, limits) === undefined);
}
