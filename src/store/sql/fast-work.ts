import { CompiledQuery, type Kysely } from 'kysely';
import { parseFrameList } from '../../core/frames.js';
import { activeJobState } from '../../core/job-state.js';
import {
  pickJob,
  type DispatchCandidate,
  type LimitState,
  type WorkerProfile,
} from '../../core/policy.js';
import type { TaskAssignment } from '../../core/types.js';
import type { TaskReport } from '../../core/worker-protocol.js';
import type { NewEvent, WorkResult } from '../contract.js';
import type { Dialect } from './dialect.js';
import { recordEvent } from './events.js';
import { LEASE_SQL, newLeasePrefix } from './ids.js';
import { releaseLimits, takeLimits } from './limits.js';
import { json, num } from './rows.js';
import type { Database } from './schema.js';

/**
 * The hot path of `SqlStore.work` — a worker reports the task it finished and claims its
 * next one — in hand-written SQL, for the common case only: a completed report (or none), a
 * job that stays active, no frame-dependent job waiting on it, no machine limit in sight.
 * Anything else throws `FastPathDeclined` before the transaction commits; it rolls back and
 * the general code (`dispatch.ts`) runs the call instead, so behaviour is the general code's.
 *
 * Why (BENCHMARKS.md, scenario 1): the general code ran ≈20 Kysely-built statements per
 * cycle; compiling them cost about as much as running them, and on PostgreSQL the job row
 * ran ≈20 round trips per cycle on PostgreSQL. Here the SQL text is fixed (SQLite keeps it
 * prepared, see `sqlite/index.ts`), a cycle is ≈10 statements, and each job row is written
 * once, last, with every counter delta of the call.
 *
 * Concurrency (PostgreSQL, READ COMMITTED; see the top of `dispatch.ts`): the worker row is
 * locked first, as in the general code. The reported task is ended by one UPDATE that checks
 * its lease; the claimed task is taken with `FOR UPDATE SKIP LOCKED` and an UPDATE that
 * re-checks `state = 'queued'`; limit units are taken by conditional UPDATEs. Counters change
 * by deltas, never from values read earlier. Locks come in the general code's order —
 * worker → job → task → limits — and a job's row stays locked from the first touch to COMMIT
 * as there. A first attempt locked the job only at the end: concurrent claims then passed
 * over queued tasks of a higher-priority job (BENCHMARKS.md, scenario 6). As in the general
 * code, a report on one job and a claim from another lock two jobs; two such calls in
 * opposite order deadlock, and PostgreSQL aborts one, which `SqlStore` runs again.
 */

/** Thrown inside the transaction when the call needs the general code. */
export class FastPathDeclined extends Error {
  constructor(reason: string) {
    super(`fast path declined: ${reason}`);
  }
}

type Row = Record<string, unknown>;
type Exec = (text: string, params: readonly unknown[]) => Promise<Row[]>;

/** `?` placeholders as PostgreSQL's `$1, $2, …` (converted once per SQL text). */
const pgText = new Map<string, string>();
function toPg(text: string): string {
  let out = pgText.get(text);
  if (out === undefined) {
    let n = 0;
    out = text.replace(/\?/g, () => `$${++n}`);
    pgText.set(text, out);
  }
  return out;
}

function executor(db: Kysely<Database>, dialect: Dialect): Exec {
  return async (text, params) => {
    const sqlText = dialect === 'postgres' ? toPg(text) : text;
    const r = await db.executeQuery<Row>(CompiledQuery.raw(sqlText, [...params]));
    return r.rows;
  };
}

const CANDIDATE_PAGE = 32;
const NO_LIMITS: ReadonlyMap<string, LimitState> = new Map();
/** The task a report's lease names; on PostgreSQL it also locks the task's job row. */
const TASK_BY_LEASE = {
  sqlite: `select job_id, idx, attempt, held_limits from tasks
    where lease = ? and state = 'rendering' and worker = ?`,
  postgres: `select t.job_id, t.idx, t.attempt, t.held_limits from tasks as t
    inner join jobs as j on j.id = t.job_id
    where t.lease = ? and t.state = 'rendering' and t.worker = ? for update of j`,
} as const;
const TASK_CLAIM_SUBQUERY = {
  sqlite: `select idx from tasks where job_id = ? and state = 'queued' order by idx limit 1`,
  postgres: `select idx from tasks where job_id = ? and state = 'queued' order by idx limit 1 for update skip locked`,
} as const;

/** The dispatch query of `dispatch.ts` (`candidatePage`), as text for one pool/group shape. */
function candidateQuery(pools: readonly string[], groups: readonly string[]): string {
  const n = pools.length;
  const marks = (k: number) => Array.from({ length: k }, () => '?').join(', ');
  const rank = [
    ...pools.map((_, i) => `when pool = ? then ${i}`),
    ...pools.map((_, i) => `when secondary_pool = ? then ${n + i}`),
    'when 1 = 0 then 0',
  ].join(' ');
  const poolOk =
    n > 0
      ? `(j.pool in ('none', '') or j.pool in (${marks(n)}) or j.secondary_pool in (${marks(n)}))`
      : `j.pool in ('none', '')`;
  const groupOk =
    groups.length > 0
      ? `(j.grp in ('none', '') or j.grp in (${marks(groups.length)}))`
      : `j.grp in ('none', '')`;
  return `select * from jobs as j where j.n_queued > 0 and j.state in ('queued', 'rendering')
    and ${poolOk} and ${groupOk}
    and not exists (select 1 from job_worker_errors as e where e.job_id = j.id and e.worker = ?
      and j.bad_worker_errors > 0 and e.errors >= j.bad_worker_errors)
    order by case ${rank} else ${2 * n} end, j.priority desc, j.submitted_at, j.id
    limit ${CANDIDATE_PAGE} offset ?`;
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
    machineLimit: 0,
    renderingWorkers: 0,
    workerOnJob: false,
    workerIsBad: false,
  };
}

async function readLimits(exec: Exec): Promise<Map<string, LimitState>> {
  const rows = await exec('select name, max, in_use from limits', []);
  return new Map(
    rows.map((l) => [
      l.name as string,
      { max: num(l.max as number), inUse: num(l.in_use as number) },
    ]),
  );
}

interface Deltas {
  queued: number;
  rendering: number;
  completed: number;
}

/**
 * `SqlStore.work` for the common case, in the caller's transaction; throws
 * `FastPathDeclined` (the caller rolls back and runs the general code) for anything else.
 */
export async function fastWork(
  db: Kysely<Database>,
  dialect: Dialect,
  now: number,
  workerName: string,
  report: TaskReport | undefined,
  wantTask: boolean,
  leaseTtlMs: number,
): Promise<WorkResult> {
  const exec = executor(db, dialect);
  const events: NewEvent[] = [];
  /** Jobs whose rows this transaction has locked (PostgreSQL). */
  const locked = new Set<string>();
  const deltas = new Map<string, Deltas>();
  const delta = (jobId: string) => {
    let d = deltas.get(jobId);
    if (!d) deltas.set(jobId, (d = { queued: 0, rendering: 0, completed: 0 }));
    return d;
  };

  // Touching the worker's row first makes one worker's calls run one at a time.
  // It also counts the tasks the worker holds (before this call's report).
  const [worker] = await exec(
    `update workers set last_seen_at = ? where name = ?
     returning state, enabled, slots, pools, groups, region,
       (select count(*) from tasks where worker = workers.name and state = 'rendering') as running`,
    [now, workerName],
  );
  if (!worker) throw new FastPathDeclined('unknown worker');
  let running = num(worker.running as number);
  let workerState = worker.state as string;

  let reportedJob: string | undefined;
  if (report) {
    if (report.outcome !== 'completed') throw new FastPathDeclined('not a completion');
    // Read first: RETURNING would give the limits the task holds after the UPDATE (none).
    // PostgreSQL: the same statement locks the task's job row, before the task's, until
    // COMMIT — as the general code holds it, so a claim of this job waits for this call.
    const [task] = await exec(TASK_BY_LEASE[dialect], [report.lease, workerName]);
    // A lease that is no longer current: the general code refuses the report.
    if (!task) throw new FastPathDeclined('lease not current');
    reportedJob = task.job_id as string;
    locked.add(reportedJob);
    const ended = await exec(
      `update tasks set state = 'completed', lease = null, lease_expires_at = null,
         held_limits = '[]', finished_at = ?, progress = 100
       where job_id = ? and idx = ? and lease = ? and state = 'rendering'
       returning idx`,
      [now, task.job_id, task.idx, report.lease],
    );
    if (ended.length === 0) throw new FastPathDeclined('lease not current');
    running -= 1;
    if ((task.held_limits as string) !== '[]') await releaseLimits(db, task.held_limits as string);
    const waiting = await exec(
      `select 1 as one from job_dependencies as d inner join jobs as j on j.id = d.job_id
       where d.depends_on = ? and j.frame_dependent = 1 and j.n_pending > 0 limit 1`,
      [reportedJob],
    );
    if (waiting.length > 0) throw new FastPathDeclined('frame-dependent jobs wait on this job');
    const d = delta(reportedJob);
    d.rendering -= 1;
    d.completed += 1;
    events.push({
      type: 'task.completed',
      jobId: reportedJob,
      taskIndex: num(task.idx as number),
      worker: workerName,
      data: { attempt: num(task.attempt as number) },
    });
  }

  let task: TaskAssignment | undefined;
  let claimedJob: Row | undefined;
  if (wantTask && num(worker.enabled as number) === 1) {
    if (running < num(worker.slots as number)) {
      const profile = {
        name: workerName,
        region: worker.region as string,
        pools: json<string[]>(worker.pools as string),
        groups: json<string[]>(worker.groups as string),
      };
      const text = candidateQuery(profile.pools, profile.groups);
      // Read when a candidate names a limit (most jobs name none).
      let limits: Map<string, LimitState> | undefined;
      pages: for (let offset = 0; ; offset += CANDIDATE_PAGE) {
        const page = await exec(text, [
          ...profile.pools,
          ...profile.pools,
          ...profile.groups,
          workerName,
          ...profile.pools,
          ...profile.pools,
          offset,
        ]);
        if (page.some((row) => num(row.machine_limit as number) > 0)) {
          throw new FastPathDeclined('a machine limit');
        }
        let candidates = page.map(candidateOf);
        if (!limits && candidates.some((c) => c.limits.length > 0)) limits = await readLimits(exec);
        for (;;) {
          const chosen = pickJob(candidates, profile, limits ?? NO_LIMITS);
          if (!chosen) break;
          const job = page.find((row) => row.id === chosen.id)!;
          const got = await claimFrom(
            db,
            exec,
            dialect,
            now,
            workerName,
            job,
            profile,
            limits ?? NO_LIMITS,
            locked,
            leaseTtlMs,
          );
          if (typeof got === 'object') {
            task = got;
            claimedJob = job;
            break pages;
          }
          if (got === 'limit') limits = await readLimits(exec);
          candidates = candidates.filter((c) => c.id !== chosen.id);
        }
        if (page.length < CANDIDATE_PAGE) break;
      }
    }
  }

  // The job rows, last: one UPDATE per job with every counter delta of this call.
  let jobStarted = false;
  if (task) {
    const d = delta(task.jobId);
    d.queued -= 1;
    d.rendering += 1;
  }
  for (const [jobId, d] of [...deltas].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const [row] = await exec(
      `update jobs set n_queued = n_queued + ?, n_rendering = n_rendering + ?,
         n_completed = n_completed + ? where id = ?
       returning state, started_at, task_count, n_pending, n_queued, n_rendering, n_completed,
         n_failed, n_suspended`,
      [d.queued, d.rendering, d.completed, jobId],
    );
    const state = row!.state as string;
    if (state !== 'queued' && state !== 'rendering') throw new FastPathDeclined('job not active');
    const claimedHere = task?.jobId === jobId;
    const next = claimedHere
      ? 'rendering'
      : activeJobState(
          {
            pending: num(row!.n_pending as number),
            queued: num(row!.n_queued as number),
            rendering: num(row!.n_rendering as number),
            completed: num(row!.n_completed as number),
            failed: num(row!.n_failed as number),
            suspended: num(row!.n_suspended as number),
          },
          num(row!.task_count as number),
        );
    if (next === 'completed') throw new FastPathDeclined('job completes');
    if (next === state) continue;
    if (claimedHere) {
      jobStarted = row!.started_at === null;
      await exec(`update jobs set state = 'rendering', started_at = ? where id = ?`, [
        jobStarted ? now : num(row!.started_at as number),
        jobId,
      ]);
    } else {
      await exec('update jobs set state = ? where id = ?', [next, jobId]);
    }
  }

  if (task) {
    if (jobStarted) {
      events.push({ type: 'job.started', jobId: task.jobId, worker: workerName, data: {} });
    }
    events.push({
      type: 'task.started',
      jobId: task.jobId,
      taskIndex: task.taskIndex,
      worker: workerName,
      data: { attempt: task.attempt },
    });
    if (workerState !== 'rendering') {
      await exec(`update workers set state = 'rendering' where name = ?`, [workerName]);
      workerState = 'rendering';
      events.push({
        type: 'worker.rendering',
        worker: workerName,
        data: { jobId: claimedJob!.id as string },
      });
    }
  }
  if (workerState === 'stalled' || workerState === 'offline') {
    await exec(`update workers set state = 'idle' where name = ?`, [workerName]);
    workerState = 'idle';
  }
  if (!task && workerState !== 'idle') {
    if (running === 0) {
      await exec(`update workers set state = 'idle' where name = ?`, [workerName]);
      events.push({ type: 'worker.idle', worker: workerName, data: {} });
    }
  }
  for (const event of events) await recordEvent(db, now, event);
  return { reportError: null, task };
}

/** Takes the job's limits and its first queued task, or says why not (`claimFromJob`). */
async function claimFrom(
  db: Kysely<Database>,
  exec: Exec,
  dialect: Dialect,
  now: number,
  workerName: string,
  job: Row,
  profile: WorkerProfile,
  limits: ReadonlyMap<string, LimitState>,
  locked: Set<string>,
  leaseTtlMs: number,
): Promise<TaskAssignment | 'gone' | 'limit'> {
  const jobId = job.id as string;
  // PostgreSQL: lock the job before its task, as the general code does, and re-check it under
  // the lock — the candidate page may be stale. Holding the lock from here to COMMIT is what
  // keeps claims in priority order across connections (BENCHMARKS.md, scenario 6): a claim
  // of this job waits for every transaction still changing it instead of skipping its rows.
  // (A job this call reported on is locked already, and the page was read under the lock.)
  if (dialect === 'postgres' && !locked.has(jobId)) {
    const [fresh] = await exec(`select * from jobs where id = ? for update`, [jobId]);
    locked.add(jobId);
    if (!fresh || num(fresh.n_queued as number) <= 0) return 'gone';
    if (fresh.state !== 'queued' && fresh.state !== 'rendering') return 'gone';
    if (num(fresh.machine_limit as number) > 0) throw new FastPathDeclined('a machine limit');
    if (!pickJob([candidateOf(fresh)], profile, limits)) return 'gone';
    job = fresh;
  }
  const jobLimits = json<string[]>(job.limits as string);
  const held =
    jobLimits.length === 0 ? [] : await takeLimits(db, jobLimits, new Set(limits.keys()));
  if (!held) return 'limit';
  const leaseExpiresAt = now + leaseTtlMs;
  const [task] = await exec(
    `update tasks set state = 'rendering', worker = ?, lease = ${LEASE_SQL}, lease_expires_at = ?,
       held_limits = ?, attempt = attempt + 1, progress = 0, status = '', log_bytes = 0,
       log_seq = 0, log_batch = 0, log_trim_seq = 0, started_at = ?, finished_at = null
     where job_id = ? and state = 'queued' and idx = (${TASK_CLAIM_SUBQUERY[dialect]})
     returning idx, frames, attempt, lease`,
    [workerName, newLeasePrefix(jobId), leaseExpiresAt, JSON.stringify(held), now, jobId, jobId],
  );
  if (!task) {
    if (held.length > 0) await releaseLimits(db, JSON.stringify(held));
    return 'gone';
  }
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
