/**
 * Scenario 6, scheduling quality, checked afterwards from the event log.
 *
 * The log is replayed in `seq` order, which is commit order (SQLite has one writer; on
 * PostgreSQL events are appended under an advisory lock held until commit), so the replay
 * knows, after each event, each job's queued tasks and each limit's units in use exactly as
 * the database had them at that commit. Every job is queued before the first claim.
 *
 * - A claim (`task.started` of job J) *skipped* job J' when, at the claim's commit, J' had a
 *   higher priority than J, at least one queued task, and a free unit of each limit it needs
 *   — and that was already so when the claim's transaction began. "Already so" is decided
 *   from `at` (the time each transaction began): if a unit of J's limit was freed by a
 *   transaction that began at or after the claim's own began, the claim could not have seen
 *   it (READ COMMITTED reads what had committed), and it is counted as a *limit race*, not a
 *   skip. With SQLite (one transaction at a time) races cannot happen.
 * - A *limit overrun* is any moment in the replay where a limit's units in use exceed its max.
 * - A *machine-limit overrun* is any moment where more distinct workers render a job than its
 *   machine limit. A job whose machine limit is reached counts as skipped only by a claim of a
 *   worker already rendering it; a machine slot freed by a transaction that began at or after
 *   the claim's own is a race (as for limits), not a skip.
 */
export interface QualityJob {
  id: string;
  priority: number;
  tasks: number;
  limits: readonly string[];
  /** Most distinct workers rendering the job at once (0 = no limit). */
  machineLimit?: number;
}

export interface LogEvent {
  seq: number;
  at: number;
  type: string;
  jobId: string | null;
  worker: string | null;
}

export interface Quality {
  claims: number;
  skipped: number;
  /** Of `skipped`: those where the job passed over needs a limit. */
  skippedLimited: number;
  limitRaces: number;
  overruns: number;
  machineLimitOverruns: number;
  /** Per job: claims seen in the log. */
  claimsByJob: Map<string, number>;
}

export function checkQuality(
  jobs: readonly QualityJob[],
  limits: ReadonlyMap<string, number>,
  events: readonly LogEvent[],
): Quality {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const queued = new Map(jobs.map((j) => [j.id, j.tasks]));
  const inUse = new Map([...limits.keys()].map((name) => [name, 0]));
  /** When (transaction start) each limit last had a unit freed. */
  const lastFreedAt = new Map<string, number>();
  const q: Quality = {
    claims: 0,
    skipped: 0,
    skippedLimited: 0,
    limitRaces: 0,
    overruns: 0,
    machineLimitOverruns: 0,
    claimsByJob: new Map(),
  };
  /** Per job: the workers rendering it, with how many of its tasks each. */
  const rendering = new Map(jobs.map((j) => [j.id, new Map<string, number>()]));
  /** When (transaction start) each job last had a machine slot freed. */
  const slotFreedAt = new Map<string, number>();
  const machineFull = (j: QualityJob, worker: string | null) => {
    const on = rendering.get(j.id)!;
    return (
      (j.machineLimit ?? 0) > 0 &&
      !(worker !== null && on.has(worker)) &&
      on.size >= (j.machineLimit ?? 0)
    );
  };
  const stopRendering = (j: QualityJob, worker: string | null, at: number) => {
    const on = rendering.get(j.id)!;
    if (worker === null || !on.has(worker)) return;
    const n = on.get(worker)! - 1;
    if (n > 0) on.set(worker, n);
    else {
      on.delete(worker);
      slotFreedAt.set(j.id, Math.max(slotFreedAt.get(j.id) ?? 0, at));
    }
  };
  const limitsOf = (j: QualityJob) => j.limits.filter((l) => limits.has(l));
  const release = (j: QualityJob, at: number) => {
    for (const l of limitsOf(j)) {
      inUse.set(l, inUse.get(l)! - 1);
      lastFreedAt.set(l, Math.max(lastFreedAt.get(l) ?? 0, at));
    }
  };

  for (const e of events) {
    const job = e.jobId === null ? undefined : byId.get(e.jobId);
    if (!job) continue;
    if (e.type === 'task.started') {
      q.claims++;
      q.claimsByJob.set(job.id, (q.claimsByJob.get(job.id) ?? 0) + 1);
      // The state at this commit, before this claim's own changes.
      for (const other of jobs) {
        if (other.priority <= job.priority || queued.get(other.id)! <= 0) continue;
        const blocking = limitsOf(other).filter((l) => inUse.get(l)! >= limits.get(l)!);
        if (blocking.length > 0) continue;
        if (machineFull(other, e.worker)) continue;
        const freedDuringClaim =
          limitsOf(other).some((l) => (lastFreedAt.get(l) ?? -1) >= e.at) ||
          ((other.machineLimit ?? 0) > 0 && (slotFreedAt.get(other.id) ?? -1) >= e.at);
        if (freedDuringClaim) q.limitRaces++;
        else {
          q.skipped++;
          if (limitsOf(other).length > 0) q.skippedLimited++;
        }
        break;
      }
      queued.set(job.id, queued.get(job.id)! - 1);
      if (e.worker !== null) {
        const on = rendering.get(job.id)!;
        on.set(e.worker, (on.get(e.worker) ?? 0) + 1);
        if ((job.machineLimit ?? 0) > 0 && on.size > job.machineLimit!) q.machineLimitOverruns++;
      }
      for (const l of limitsOf(job)) {
        inUse.set(l, inUse.get(l)! + 1);
        if (inUse.get(l)! > limits.get(l)!) q.overruns++;
      }
    } else if (e.type === 'task.completed' || e.type === 'task.failed') {
      release(job, e.at);
      stopRendering(job, e.worker, e.at);
    } else if (e.type === 'task.requeued') {
      queued.set(job.id, queued.get(job.id)! + 1);
      release(job, e.at);
      stopRendering(job, e.worker, e.at);
    }
  }
  return q;
}
