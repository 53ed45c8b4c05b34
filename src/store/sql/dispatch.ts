import { CompiledQuery, sql, type Kysely, type Selectable } from 'kysely';
import { knownApps } from '../../core/app-settings.js';
import { leaseLost, notFound } from '../../core/errors.js';
import { parseFrameList } from '../../core/frames.js';
import { activeJobState } from '../../core/job-state.js';
import { taskAfterAttempt } from '../../core/task-state.js';
import {
  pickJob,
  type DispatchCandidate,
  type LimitState,
  type WorkerProfile,
} from '../../core/policy.js';
import type { TaskAssignment, WorkerState } from '../../core/types.js';
import type { TaskReport } from '../../core/worker-protocol.js';
import { workerAfterWork } from '../../core/worker-state.js';
import type { WorkResult } from '../contract.js';
import type { Dialect } from './dialect.js';
import { recordEvent } from './events.js';
import { foldCountDeltas } from './job-counts.js';
import { prepareOnce } from './prepared.js';
import {
  bumpCounts,
  fetchJobRow,
  lockJobRow,
  recountJob,
  refreshFrameDependents,
  releaseDependents,
  settleJob,
} from './job-flow.js';
import { stopRendering } from './jobs.js';
import { LEASE_SQL, newLeasePrefix } from './ids.js';
import { recordLeaseLoss } from './lease-loss.js';
import { releaseLimits, takeLimits } from './limits.js';
import { json, num } from './rows.js';
import type { Database, TasksTable, WorkersTable } from './schema.js';

type Db = Kysely<Database>;

/*
 * Dispatch: a worker's report on the task it finished and its claim of the next one, in one
 * transaction (`work`), and everything else that ends a task (reports alone, requeues,
 * expired leases). One implementation for every case and both dialects: the hot statements
 * are fixed SQL text per dialect (`run`: SQLite keeps each text prepared, see
 * `sqlite/index.ts`), the rare paths (failures, retries, error limits, bad workers, job
 * completion, dependents) are the general functions of `job-flow.ts`, called in the same
 * transaction. Nothing is tried and rolled back.
 *
 * Job counters (the `n_*` columns) on the hot path. A claim and a completion change a job's
 * counters by deltas collected during the call and written at the very end (`finish`), just
 * before the event append and COMMIT. SQLite writes them to the job row. PostgreSQL adds them
 * to this connection's delta row of the job (`job-counts.ts`, migration 014), which no other
 * transaction writes: claims and completions of one job on many connections and managers do
 * not queue behind one row lock held to COMMIT. Only a call that changes the job's rendering
 * count (a claim without a completion of the same job, or the reverse: the only calls that can
 * move the job between queued, rendering and completed) or completes a task that
 * frame-dependent jobs wait on takes a turn on the job (`FOR NO KEY UPDATE`, to COMMIT) and
 * reads the counters after it; so of two last tasks completing at once on two connections, the
 * second to take its turn sees the first. Most such calls take no turn:
 * - a worker that reports a task and claims the next of the same job (the steady state on a
 *   big job) changes no count that moves the state;
 * - a claim that finds its job already rendering (a worker's first claim, or one moving to
 *   another job) moves no state;
 * - a completion without a claim of the same job (a worker moving to another job, or with
 *   nothing left to claim) moves the job, if at all, after COMMIT: the store then reads the
 *   job's committed counters (`lagsCounters`) and, when the job is left rendering with
 *   nothing rendering, settles it under `FOR UPDATE` (queued, or completed with all that
 *   follows). Of the last tasks completing at once, the call that commits last sees the rest.
 * A completion that frame-dependent jobs wait on still takes its turn; it queues the job only
 * when no other call holds it (`noClaimInFlight`), as a claim in flight that found the job
 * rendering is not in the counters it read. House keeping settles what a crash between a
 * COMMIT and its settling, or a claim that rendered nothing after all, leaves behind
 * (`settleIdleRendering`).
 *
 * Concurrency on PostgreSQL (READ COMMITTED, several connections and managers):
 * - The hot path holds `FOR KEY SHARE` on each job whose tasks it changes, from before the
 *   task changes to COMMIT. Key-share locks do not conflict with each other nor with a job
 *   turn (`FOR NO KEY UPDATE`), but they do with `FOR UPDATE` (`lockJobRow`), which
 *   every other change of a job takes first (user actions, failure reports, requeues, lease
 *   expiry, lease-loss records). So such a change waits for the claims and completions in
 *   flight and sees their tasks; a claim that starts meanwhile waits for it and re-reads the
 *   job (suspended, pending, deleted: nothing to claim).
 * - A claim takes its task with `FOR UPDATE SKIP LOCKED` and an UPDATE that re-checks
 *   `state = 'queued'`. When every queued task of the chosen job is locked by other claims in
 *   flight, it waits for them (`FOR UPDATE` without SKIP LOCKED) instead of passing the job
 *   over: a claim only goes to a lower job when the higher one has no queued task left once
 *   those claims commit, so none skips a higher-priority job (BENCHMARKS.md, scenario 6).
 * - Limit units are taken by conditional UPDATEs (`in_use < max`): never overrun.
 * - A job with a machine limit is locked `FOR NO KEY UPDATE` by each claim of it, and its
 *   rendering workers are counted under that lock: its claims run one at a time, so the count
 *   cannot be raced (0 machine-limit overruns).
 * - A worker's own calls (work, heartbeat) start by touching its row, so they run one at a
 *   time and its slot count holds.
 * Locks are taken worker row → job rows (key share, or no key update) → task rows → limit rows
 * (sorted by name) → this connection's delta rows and job turns (sorted by job id) → dependent
 * job rows. A report on one job and a claim from another can still meet two other calls in the
 * opposite order; PostgreSQL then aborts one with a deadlock error and `SqlStore` runs it again.
 */

/** Candidate jobs fetched per round of the dispatch query. */
const CANDIDATE_PAGE = 32;
const NO_LIMITS: ReadonlyMap<string, LimitState> = new Map();

export interface DispatchSettings {
  leaseTtlMs: number;
}

// ── fixed SQL ───────────────────────────────────────────────────────────────

type Row = Record<string, unknown>;

/**
 * `?` placeholders as PostgreSQL's `$1, $2, …` (converted once per SQL text), registered as a
 * named prepared statement (`prepared.ts`).
 */
const pgText = new Map<string, string>();
function toPg(text: string): string {
  let out = pgText.get(text);
  if (out === undefined) {
    let n = 0;
    out = text.replace(/\?/g, () => `$${++n}`);
    pgText.set(text, out);
    prepareOnce(out);
  }
  return out;
}

/** Runs one fixed SQL text (written with `?` placeholders) and returns its rows. */
async function run(
  db: Db,
  dialect: Dialect,
  text: string,
  params: readonly unknown[],
): Promise<Row[]> {
  const sqlText = dialect === 'postgres' ? toPg(text) : text;
  const r = await db.executeQuery<Row>(CompiledQuery.raw(sqlText, [...params]));
  return r.rows;
}

/** Marks the worker seen; returns its row and how many tasks it holds. Locks the row. */
const TOUCH_WORKER = `update workers set last_seen_at = ? where name = ?
  returning state, enabled, slots, pools, groups, region, apps,
    (select count(*) from tasks where worker = workers.name and state = 'rendering') as running`;

/** The task a completion report's lease names (read before it changes: its held limits). */
const TASK_BY_LEASE = {
  sqlite: `select job_id, idx, attempt, held_limits from tasks
    where lease = ? and state = 'rendering' and worker = ?`,
  postgres: `select t.job_id, t.idx, t.attempt, t.held_limits from tasks as t
    inner join jobs as j on j.id = t.job_id
    where t.lease = ? and t.state = 'rendering' and t.worker = ? for key share of j`,
} as const;

const COMPLETE_TASK = `update tasks set state = 'completed', lease = null, lease_expires_at = null,
    held_limits = '[]', finished_at = ?, progress = 100
  where job_id = ? and idx = ? and lease = ? and state = 'rendering'
  returning idx`;

/**
 * PostgreSQL: `TASK_BY_LEASE` and `COMPLETE_TASK` in one round trip. `t` holds the task as it
 * was (its held limits); the UPDATE re-checks the lease on the task's newest version.
 */
const COMPLETE_BY_LEASE = `with t as (select t.job_id, t.idx, t.attempt, t.held_limits, t.lease
    from tasks as t inner join jobs as j on j.id = t.job_id
    where t.lease = ? and t.state = 'rendering' and t.worker = ? for key share of j)
  update tasks as u set state = 'completed', lease = null, lease_expires_at = null,
    held_limits = '[]', finished_at = ?, progress = 100
  from t where u.job_id = t.job_id and u.idx = t.idx and u.lease = t.lease
    and u.state = 'rendering'
  returning t.job_id, t.idx, t.attempt, t.held_limits`;

/** A job re-read under its lock when a claim has chosen it (PostgreSQL). */
const LOCK_JOB = {
  keyShare: `select * from jobs where id = ? for key share`,
  /**
   * Machine-limited jobs: their claims take turns. `NO KEY UPDATE` conflicts with itself but
   * not with the key-share locks other calls hold on the job (a completion's lookup): with
   * `FOR UPDATE`, two workers each completing a task of the job and claiming its next would
   * each wait for the other's key share (a deadlock).
   */
  turns: `select * from jobs where id = ? for no key update`,
} as const;

const RENDERING_WORKERS = `select distinct worker from tasks
  where job_id = ? and state = 'rendering'`;

const READ_LIMITS = `select name, max, in_use from limits`;

function claimTaskSql(lock: '' | ' for update' | ' for update skip locked'): string {
  return `update tasks set state = 'rendering', worker = ?, lease = ${LEASE_SQL},
      lease_expires_at = ?, held_limits = ?, attempt = attempt + 1, progress = 0, status = '',
      log_bytes = 0, log_seq = 0, log_batch = 0, log_trim_seq = 0, started_at = ?,
      finished_at = null
    where job_id = ? and state = 'queued' and idx = (select idx from tasks
      where job_id = ? and state = 'queued' order by idx limit 1${lock})
    returning idx, frames, attempt, lease`;
}
const CLAIM_TASK = {
  sqlite: claimTaskSql(''),
  postgres: claimTaskSql(' for update skip locked'),
  /** PostgreSQL, when every queued task is locked by claims in flight: wait for them. */
  postgresWaiting: claimTaskSql(' for update'),
} as const;

/** One job's counter deltas of a call, and what its row says afterwards. */
const UPDATE_COUNTERS = `update jobs set n_queued = n_queued + ?, n_rendering = n_rendering + ?,
    n_completed = n_completed + ?
  where id = ?
  returning state, started_at, task_count, n_pending, n_queued, n_rendering, n_completed,
    n_failed, n_suspended,
    (select count(*) from job_dependencies as d inner join jobs as dj on dj.id = d.job_id
      where d.depends_on = jobs.id and dj.frame_dependent = 1 and dj.n_pending > 0)
      as frame_waiters`;

/** PostgreSQL: adds a call's counter deltas of a job to its connection's row (`job-counts.ts`). */
const ADD_COUNT_DELTA = `insert into job_count_deltas as d (job_id, shard, queued, rendering, completed)
  values (?, pg_backend_pid(), ?, ?, ?)
  on conflict (job_id, shard) do update set queued = d.queued + excluded.queued,
    rendering = d.rendering + excluded.rendering, completed = d.completed + excluded.completed
  returning (select count(*) from job_dependencies as dd inner join jobs as dj on dj.id = dd.job_id
      where dd.depends_on = d.job_id and dj.frame_dependent = 1 and dj.n_pending > 0)
      as frame_waiters`;

/** PostgreSQL: a job's turn (see `finish`). Conflicts with itself, not with key-share locks. */
const TAKE_TURN = `select 1 from jobs where id = ? for no key update`;

/** PostgreSQL: locks a job `FOR UPDATE` unless another transaction holds any lock on it. */
const TRY_LOCK_JOB = `select 1 from jobs where id = ? for update skip locked`;

/** PostgreSQL: a job's counters, its row's plus its deltas (read after `TAKE_TURN`). */
const COUNTED_JOB = `select j.state, j.started_at, j.task_count, j.n_pending, j.n_failed,
    j.n_suspended, j.n_queued + coalesce(sum(d.queued), 0) as n_queued,
    j.n_rendering + coalesce(sum(d.rendering), 0) as n_rendering,
    j.n_completed + coalesce(sum(d.completed), 0) as n_completed
  from jobs as j left join job_count_deltas as d on d.job_id = j.id
  where j.id = ? group by j.id`;

const SET_JOB_ACTIVE_STATE = `update jobs set state = ?, started_at = coalesce(started_at, ?)
  where id = ?`;

const SET_WORKER_STATE = `update workers set state = ? where name = ?`;

/**
 * The dispatch query's text for one shape of worker (how many pools, groups and application
 * plugins it has).
 */
const candidateTexts = new Map<string, string>();
function candidateQuery(dialect: Dialect, pools: number, groups: number, plugins: number): string {
  const key = `${dialect}/${pools}/${groups}/${plugins}`;
  let text = candidateTexts.get(key);
  if (text !== undefined) return text;
  const marks = (k: number) => Array.from({ length: k }, () => '?').join(', ');
  const rank = [
    ...Array.from({ length: pools }, (_, i) => `when pool = ? then ${i}`),
    ...Array.from({ length: pools }, (_, i) => `when secondary_pool = ? then ${pools + i}`),
    'when 1 = 0 then 0',
  ].join(' ');
  const poolOk =
    pools > 0
      ? `(j.pool in ('none', '') or j.pool in (${marks(pools)}) or j.secondary_pool in (${marks(pools)}))`
      : `j.pool in ('none', '')`;
  const groupOk =
    groups > 0 ? `(j.grp in ('none', '') or j.grp in (${marks(groups)}))` : `j.grp in ('none', '')`;
  // PostgreSQL: the row's n_queued is an upper bound (claims lower it in delta rows), so a
  // job drained since its last fold is passed over by its tasks index, not by a claim attempt.
  const queuedOk =
    dialect === 'postgres'
      ? `and exists (select 1 from tasks as q where q.job_id = j.id and q.state = 'queued')`
      : '';
  text = `select * from jobs as j where j.n_queued > 0 and j.state in ('queued', 'rendering')
    ${queuedOk} and ${poolOk} and ${groupOk} and j.plugin in (${marks(plugins)})
    and not exists (select 1 from job_worker_errors as e where e.job_id = j.id and e.worker = ?
      and j.bad_worker_errors > 0 and e.errors >= j.bad_worker_errors)
    order by case ${rank} else ${2 * pools} end, j.priority desc, j.submitted_at, j.id
    limit ${CANDIDATE_PAGE} offset ?`;
  candidateTexts.set(key, text);
  return text;
}

// ── one call's deferred counter changes ─────────────────────────────────────

interface Deltas {
  queued: number;
  rendering: number;
  completed: number;
}

/**
 * What one call changed on the hot path and writes at its end (`finish`): counter deltas per
 * job, and the claim whose events follow its job's state.
 */
class Cycle {
  readonly deltas = new Map<string, Deltas>();
  /**
   * PostgreSQL: jobs this call's claim found already rendering (and started) under its key
   * share lock: the claim moves no state, so it takes no turn (see `finish`).
   */
  readonly foundRendering = new Set<string>();
  /** PostgreSQL: jobs this call completed a task of without its turn (see `finish`). */
  readonly settleAfterCommit: string[] = [];
  claimed: { jobId: string; taskIndex: number; attempt: number; worker: string } | undefined;

  delta(jobId: string): Deltas {
    let d = this.deltas.get(jobId);
    if (!d) this.deltas.set(jobId, (d = { queued: 0, rendering: 0, completed: 0 }));
    return d;
  }
}

/**
 * Writes a call's counter deltas, one statement per job in id order, then moves each job by
 * its counters (queued ↔ rendering, completion with its on-complete action and dependents),
 * records the claim's events and lets frame-dependent jobs waiting on a completed task go.
 * Runs last in the transaction.
 *
 * SQLite: one UPDATE of the job row (one writer at a time; the row is exact).
 * PostgreSQL: the deltas go to this connection's delta row (`job-counts.ts`), which no other
 * transaction writes. The job's state can change only by a call whose net change of the
 * job's rendering count is not 0: completing one task and claiming the next of the same job
 * leaves the rendering count as it was, and the job cannot be complete with the claimed task
 * rendering. Such a call (but for the kinds the top of this file lists), and one that
 * completes a task of a job that frame-dependent jobs wait on, takes its turn on the job
 * (`FOR NO KEY UPDATE`, to COMMIT) and then reads the counters: every other turn taken
 * before it committed, so the state written is the one the counters have at COMMIT.
 */
async function finish(db: Db, dialect: Dialect, now: number, cycle: Cycle): Promise<void> {
  const ids = [...cycle.deltas.keys()].sort();
  const rows = new Map<string, Row>();
  for (const id of ids) {
    const d = cycle.deltas.get(id)!;
    if (dialect === 'sqlite') {
      const [row] = await run(db, dialect, UPDATE_COUNTERS, [
        d.queued,
        d.rendering,
        d.completed,
        id,
      ]);
      if (row) rows.set(id, row);
      continue;
    }
    const [added] = await run(db, dialect, ADD_COUNT_DELTA, [
      id,
      d.queued,
      d.rendering,
      d.completed,
    ]);
    const frameWaiters = num(added!.frame_waiters as number);
    if (d.rendering === 0 && !(d.completed > 0 && frameWaiters > 0)) continue;
    if (d.rendering > 0 && cycle.foundRendering.has(id)) continue;
    if (d.rendering < 0 && frameWaiters === 0) {
      cycle.settleAfterCommit.push(id);
      continue;
    }
    await run(db, dialect, TAKE_TURN, [id]);
    const [row] = await run(db, dialect, COUNTED_JOB, [id]);
    if (row) rows.set(id, { ...row, frame_waiters: frameWaiters });
  }
  // Reported jobs first, then the claimed one: events come in the order things happened.
  const claimedId = cycle.claimed?.jobId;
  const order = [...ids.filter((id) => id !== claimedId), ...ids.filter((id) => id === claimedId)];
  for (const id of order) {
    const row = rows.get(id);
    const claimedHere = id === claimedId;
    if (row) {
      const state = row.state as string;
      if (state === 'queued' || state === 'rendering') {
        const next = activeJobState(countsOfRow(row), num(row.task_count as number));
        const starts = claimedHere && row.started_at === null;
        if (next === 'completed') {
          // Every task of the job completed and committed, but for this call's: no other
          // transaction has a delta of it in flight, so they fold into the row.
          await foldCountDeltas(db, dialect, id);
          await settleJob(db, dialect, now, id);
        } else if (next !== state || starts) {
          if (next !== 'queued' || (await noClaimInFlight(db, dialect, id))) {
            await run(db, dialect, SET_JOB_ACTIVE_STATE, [next, now, id]);
          }
        }
        if (starts) {
          await recordEvent(db, now, {
            type: 'job.started',
            jobId: id,
            worker: cycle.claimed!.worker,
            data: {},
          });
        }
      }
    }
    if (claimedHere) {
      const c = cycle.claimed!;
      await recordEvent(db, now, {
        type: 'task.started',
        jobId: id,
        taskIndex: c.taskIndex,
        worker: c.worker,
        data: { attempt: c.attempt },
      });
    }
    if (row && cycle.deltas.get(id)!.completed > 0 && num(row.frame_waiters as number) > 0) {
      await refreshFrameDependents(db, dialect, id);
    }
  }
}

/** What a worker's call leaves for its caller to do after COMMIT. */
export interface Settle {
  /** Jobs to `settleIfIdle`: the call completed a task of each without taking its turn. */
  settleAfterCommit: string[];
}

/**
 * PostgreSQL, after COMMIT of a call that completed a task of the job without its turn:
 * whether the job's state lags its committed counters (rendering with nothing rendering:
 * queued again, or complete). Of calls completing the job's last tasks at once, the one that
 * committed last reads every other's change here, so at least one of them sees it.
 */
export async function lagsCounters(db: Db, jobId: string): Promise<boolean> {
  const [row] = await run(db, 'postgres', COUNTED_JOB, [jobId]);
  if (!row || (row.state !== 'queued' && row.state !== 'rendering')) return false;
  return activeJobState(countsOfRow(row), num(row.task_count as number)) !== row.state;
}

function countsOfRow(row: Row) {
  return {
    pending: num(row.n_pending as number),
    queued: num(row.n_queued as number),
    rendering: num(row.n_rendering as number),
    completed: num(row.n_completed as number),
    failed: num(row.n_failed as number),
    suspended: num(row.n_suspended as number),
  };
}

/**
 * PostgreSQL: whether no other transaction holds a lock on the job, taking `FOR UPDATE` if
 * so. Asked before a completion moves a job from rendering to queued: a claim that found the
 * job rendering takes no turn, so its task is not in the counters read under the turn while
 * it is in flight; but it holds the job `FOR KEY SHARE` to COMMIT, which `FOR UPDATE` cannot
 * get past. When the row is locked the job stays rendering: a claim in flight commits a
 * rendering task, and a job left rendering with nothing rendering (the claim rolled back, or
 * the lock was another kind of call's) is settled by house keeping (`settleIdleRendering`).
 * With no call of the job in flight the counters read are exact and the job is queued.
 */
async function noClaimInFlight(db: Db, dialect: Dialect, jobId: string): Promise<boolean> {
  if (dialect !== 'postgres') return true;
  return (await run(db, dialect, TRY_LOCK_JOB, [jobId])).length > 0;
}

// ── the worker's call ───────────────────────────────────────────────────────

/** A worker as dispatch sees it: the policy's profile and the plugins it runs. */
type DispatchProfile = WorkerProfile & {
  /** The built-in application plugins and those it offers (`--apps-dir`). */
  plugins: readonly string[];
};

function profileOf(worker: Row, name: string): DispatchProfile {
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

/**
 * `Store.work`: the worker's report on the task it finished (if any) and, with `wantTask`,
 * its claim of the next one, in the caller's transaction. A refused report (its lease is no
 * longer current) changes nothing, is recorded (`recordLeaseLoss`) and does not stop the
 * claim.
 */
export async function work(
  db: Db,
  dialect: Dialect,
  now: number,
  workerName: string,
  report: TaskReport | undefined,
  wantTask: boolean,
  settings: DispatchSettings,
): Promise<WorkResult & Settle> {
  // Touching the worker's row first makes one worker's calls run one at a time. It also
  // counts the tasks the worker holds (before this call's report).
  const [worker] = await run(db, dialect, TOUCH_WORKER, [now, workerName]);
  if (!worker) throw notFound(`worker ${workerName}`);
  let running = num(worker.running as number);
  const workerState = worker.state as WorkerState;
  const cycle = new Cycle();

  let reportError: WorkResult['reportError'] = null;
  if (report) {
    try {
      await applyReport(db, dialect, now, workerName, report, cycle);
      running -= 1;
    } catch (err) {
      if (!(err instanceof Error && 'code' in err && err.code === 'lease_lost')) throw err;
      reportError = { code: 'lease_lost', message: err.message };
      await recordLeaseLoss(db, dialect, now, workerName, report.lease, {
        kind: 'report',
        outcome: report.outcome,
      });
    }
  }

  let task: TaskAssignment | undefined;
  if (wantTask && num(worker.enabled as number) === 1 && running < num(worker.slots as number)) {
    task = await claim(db, dialect, now, profileOf(worker, workerName), cycle, settings);
  }
  await finish(db, dialect, now, cycle);

  // The worker state machine (`src/core/worker-state.ts`), written when it moves.
  const step = workerAfterWork(workerState, task !== undefined, running);
  if (step.state !== workerState) {
    await run(db, dialect, SET_WORKER_STATE, [step.state, workerName]);
  }
  if (step.event) {
    await recordEvent(db, now, {
      type: step.event,
      worker: workerName,
      data: task ? { jobId: task.jobId } : {},
    });
  }
  return { reportError, task, settleAfterCommit: cycle.settleAfterCommit };
}

/** Applies a worker's report on the task its lease names; throws lease_lost, changing nothing. */
export async function report(
  db: Db,
  dialect: Dialect,
  now: number,
  workerName: string,
  r: TaskReport,
): Promise<Settle> {
  const cycle = new Cycle();
  await applyReport(db, dialect, now, workerName, r, cycle);
  await finish(db, dialect, now, cycle);
  return { settleAfterCommit: cycle.settleAfterCommit };
}

async function applyReport(
  db: Db,
  dialect: Dialect,
  now: number,
  workerName: string,
  r: TaskReport,
  cycle: Cycle,
): Promise<void> {
  if (r.outcome === 'completed') {
    await completeTask(db, dialect, now, workerName, r.lease, cycle);
    return;
  }
  // Failures and hand-backs: the job's row locked first, counters and state at once.
  const task = await taskByLease(db, workerName, r.lease);
  await lockJobRow(db, dialect, task.job_id);
  if (r.outcome === 'interrupted') {
    // Not the task's fault nor the worker's: no error counted, its own count instead.
    await endReportedTask(db, now, task, 'queued', {
      interruptions: num(task.interruptions) + 1,
    });
    await recordEvent(db, now, {
      type: 'task.interrupted',
      jobId: task.job_id,
      taskIndex: num(task.idx),
      worker: workerName,
      data: { interruptions: num(task.interruptions) + 1, message: r.message },
    });
    await settleJob(db, dialect, now, task.job_id);
    return;
  }
  if (r.outcome === 'handed-back') {
    await endReportedTask(db, now, task, 'queued');
    await recordEvent(db, now, {
      type: 'task.requeued',
      jobId: task.job_id,
      taskIndex: num(task.idx),
      worker: workerName,
      data: { reason: 'handed back by the worker' },
    });
    await settleJob(db, dialect, now, task.job_id);
    return;
  }
  await recordTaskError(
    db,
    dialect,
    now,
    task,
    workerName,
    r.message || `exit code ${r.exitCode ?? 'unknown'}`,
    r.exitCode,
  );
}

/**
 * A completed report: ends the task (the UPDATE re-checks its lease), gives its limit units
 * back and leaves the counters to `finish`. PostgreSQL: the lookup holds the job key-shared.
 */
async function completeTask(
  db: Db,
  dialect: Dialect,
  now: number,
  workerName: string,
  lease: string,
  cycle: Cycle,
): Promise<void> {
  let task: Row | undefined;
  if (dialect === 'postgres') {
    [task] = await run(db, dialect, COMPLETE_BY_LEASE, [lease, workerName, now]);
    if (!task) throw leaseLost(lease);
  } else {
    // Read first: RETURNING would give the limits the task holds after the UPDATE (none).
    [task] = await run(db, dialect, TASK_BY_LEASE[dialect], [lease, workerName]);
    if (!task) throw leaseLost(lease);
    const ended = await run(db, dialect, COMPLETE_TASK, [now, task.job_id, task.idx, lease]);
    if (ended.length === 0) throw leaseLost(lease);
  }
  const jobId = task.job_id as string;
  if ((task.held_limits as string) !== '[]') await releaseLimits(db, task.held_limits as string);
  const d = cycle.delta(jobId);
  d.rendering -= 1;
  d.completed += 1;
  await recordEvent(db, now, {
    type: 'task.completed',
    jobId,
    taskIndex: num(task.idx as number),
    worker: workerName,
    data: { attempt: num(task.attempt as number) },
  });
}

// ── claims ──────────────────────────────────────────────────────────────────

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
async function claim(
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
    // Re-read under the lock (see the top of this file): key share, or no key update when a
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

// ── workers, and the ends of tasks off the hot path ─────────────────────────

/**
 * Marks the worker seen now and returns its row. The UPDATE also holds the worker's row lock
 * until the transaction ends, so one worker's claims, reports and heartbeats run one at a
 * time on PostgreSQL (its slot count and state cannot be raced).
 */
export async function touchWorker(
  db: Db,
  name: string,
  now: number,
): Promise<Selectable<WorkersTable>> {
  const worker = await db
    .updateTable('workers')
    .set({ last_seen_at: now })
    .where('name', '=', name)
    .returningAll()
    .executeTakeFirst();
  if (!worker) throw notFound(`worker ${name}`);
  return worker;
}

export async function fetchWorkerRow(db: Db, name: string): Promise<Selectable<WorkersTable>> {
  const worker = await db
    .selectFrom('workers')
    .selectAll()
    .where('name', '=', name)
    .executeTakeFirst();
  if (!worker) throw notFound(`worker ${name}`);
  return worker;
}

async function runningCount(db: Db, worker: string): Promise<number> {
  const r = await db
    .selectFrom('tasks')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('worker', '=', worker)
    .where('state', '=', 'rendering')
    .executeTakeFirstOrThrow();
  return num(r.n);
}

async function setWorkerState(
  db: Db,
  now: number,
  worker: Selectable<WorkersTable>,
  state: 'idle' | 'rendering',
  extra: Record<string, unknown> = {},
): Promise<void> {
  if (worker.state === state) return;
  await db.updateTable('workers').set({ state }).where('name', '=', worker.name).execute();
  worker.state = state;
  await recordEvent(db, now, {
    type: state === 'idle' ? 'worker.idle' : 'worker.rendering',
    worker: worker.name,
    data: extra,
  });
}

/** The task a worker's lease names, if the lease is still the current one. */
async function taskByLease(
  db: Db,
  workerName: string,
  lease: string,
): Promise<Selectable<TasksTable>> {
  const task = await db
    .selectFrom('tasks')
    .selectAll()
    .where('lease', '=', lease)
    .where('state', '=', 'rendering')
    .executeTakeFirst();
  if (!task || task.worker !== workerName) throw leaseLost(lease);
  return task;
}

/**
 * Ends a rendering task: its lease, limits and counters. The UPDATE re-checks that `task`'s
 * lease is still the current one (and, with `expiredBefore`, that it is still expired: a
 * heartbeat may have renewed it since it was read); returns false, changing nothing, when it
 * is not. The caller holds the job's row lock.
 */
async function endTask(
  db: Db,
  now: number,
  task: Selectable<TasksTable>,
  state: 'completed' | 'queued' | 'failed',
  extra: Record<string, unknown> = {},
  expiredBefore?: number,
): Promise<boolean> {
  let q = db
    .updateTable('tasks')
    .set({
      state,
      lease: null,
      lease_expires_at: null,
      held_limits: '[]',
      worker: state === 'queued' ? null : task.worker,
      finished_at: state === 'queued' ? null : now,
      ...extra,
    })
    .where('job_id', '=', task.job_id)
    .where('idx', '=', task.idx)
    .where('lease', '=', task.lease)
    .where('state', '=', 'rendering');
  if (expiredBefore !== undefined) q = q.where('lease_expires_at', '<', expiredBefore);
  const r = await q.executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) return false;
  await releaseLimits(db, task.held_limits);
  await bumpCounts(db, task.job_id, { rendering: -1, [state]: 1 });
  return true;
}

/** Ends the task a report names, or refuses the report when its lease is no longer current. */
async function endReportedTask(
  db: Db,
  now: number,
  task: Selectable<TasksTable>,
  state: 'completed' | 'queued' | 'failed',
  extra: Record<string, unknown> = {},
): Promise<void> {
  if (!(await endTask(db, now, task, state, extra))) throw leaseLost(task.lease ?? '');
}

/**
 * Counts an error against the task, the job and the worker (bad-worker list); retries the
 * task while it has retries left, otherwise fails it and the job.
 */
async function recordTaskError(
  db: Db,
  dialect: Dialect,
  now: number,
  task: Selectable<TasksTable>,
  workerName: string,
  message: string,
  exitCode: number | null,
): Promise<void> {
  // The caller holds the job's row lock: its error count is current.
  const job = (await fetchJobRow(db, task.job_id))!;
  const at = { jobId: task.job_id, taskIndex: num(task.idx), worker: workerName };
  const taskErrors = num(task.error_count) + 1;
  const jobErrors = num(job.error_count) + 1;
  const retriesLeft = taskAfterAttempt('failed', taskErrors, num(job.task_retries)) === 'queued';
  // First write: refuses the report (changing nothing) if the lease is no longer current.
  await endReportedTask(db, now, task, retriesLeft ? 'queued' : 'failed', {
    error_count: taskErrors,
  });
  await db.updateTable('jobs').set({ error_count: jobErrors }).where('id', '=', job.id).execute();
  await db
    .insertInto('job_worker_errors')
    .values({ job_id: job.id, worker: workerName, errors: 1 })
    .onConflict((oc) =>
      oc.columns(['job_id', 'worker']).doUpdateSet({ errors: sql`job_worker_errors.errors + 1` }),
    )
    .execute();
  const workerErrors = await db
    .selectFrom('job_worker_errors')
    .select('errors')
    .where('job_id', '=', job.id)
    .where('worker', '=', workerName)
    .executeTakeFirstOrThrow();
  const threshold = num(job.bad_worker_errors);
  const nowBad = threshold > 0 && num(workerErrors.errors) === threshold;
  await recordEvent(db, now, {
    type: 'job.error',
    ...at,
    data: {
      attempt: num(task.attempt),
      message,
      exitCode,
      taskErrors,
      jobErrors,
      badWorker: nowBad,
    },
  });

  if (retriesLeft) {
    await recordEvent(db, now, {
      type: 'task.requeued',
      ...at,
      data: { reason: 'error', retry: taskErrors },
    });
  } else {
    await recordEvent(db, now, {
      type: 'task.failed',
      ...at,
      data: { message, errors: taskErrors },
    });
  }
  const limit = num(job.job_error_limit);
  const overLimit = limit > 0 && jobErrors >= limit;
  if (!retriesLeft || overLimit) {
    await stopRendering(db, job.id, 'queued');
    await recountJob(db, job.id);
    await db
      .updateTable('jobs')
      .set({ state: 'failed', finished_at: now })
      .where('id', '=', job.id)
      .execute();
    await recordEvent(db, now, {
      type: 'job.failed',
      jobId: job.id,
      data: {
        reason: retriesLeft
          ? `${jobErrors} errors reached the job's error limit (${limit})`
          : `task ${num(task.idx)} failed after ${taskErrors} errors: ${message}`,
      },
    });
    // Jobs waiting for this one are released (resumeOnFailedDependencies) or told it failed.
    await releaseDependents(db, dialect, now, job.id);
    return;
  }
  await settleJob(db, dialect, now, job.id);
}

/** Requeues every task a worker holds (it restarted, stopped or stalled). */
export async function requeueWorkerTasks(
  db: Db,
  dialect: Dialect,
  now: number,
  workerName: string,
  reason: string,
): Promise<number> {
  const held = await db
    .selectFrom('tasks')
    .selectAll()
    .where('worker', '=', workerName)
    .where('state', '=', 'rendering')
    .orderBy('job_id')
    .orderBy('idx')
    .execute();
  let requeued = 0;
  for (const task of held) {
    await lockJobRow(db, dialect, task.job_id);
    if (!(await endTask(db, now, task, 'queued'))) continue;
    requeued++;
    await recordEvent(db, now, {
      type: 'task.requeued',
      jobId: task.job_id,
      taskIndex: num(task.idx),
      worker: workerName,
      data: { reason },
    });
    await settleJob(db, dialect, now, task.job_id);
  }
  return requeued;
}

/**
 * The lease-expiry query: runs every house-keeping round (2 s), so it must read only the
 * partial index `tasks_rendering` (rendering tasks by lease expiry), never the tasks table.
 * `state = 'rendering'` is written as a literal so the planner can match the index's WHERE
 * clause, and there is no ORDER BY: with `ORDER BY job_id, idx` SQLite walked the primary key
 * of every task instead (≈1 s per round with 8M tasks); the few rows are sorted here.
 * `expiredLeasesQuery(db, now).compile()` is what the query-plan tests explain.
 */
export function expiredLeasesQuery(db: Db, now: number) {
  return db
    .selectFrom('tasks')
    .selectAll()
    .where('state', '=', sql.lit('rendering'))
    .where('lease_expires_at', '<', now);
}

/** Requeues tasks whose leases ran out: their worker stopped saying it holds them. */
export async function requeueExpired(db: Db, dialect: Dialect, now: number): Promise<number> {
  const expired = await expiredLeasesQuery(db, now).execute();
  // Job then task order, as everywhere: managers lock in one order and do not deadlock.
  expired.sort((a, b) =>
    a.job_id < b.job_id ? -1 : a.job_id > b.job_id ? 1 : num(a.idx) - num(b.idx),
  );
  let requeued = 0;
  for (const task of expired) {
    await lockJobRow(db, dialect, task.job_id);
    // Another manager's house keeping may have requeued it, or a heartbeat renewed it.
    if (!(await endTask(db, now, task, 'queued', {}, now))) continue;
    requeued++;
    await recordEvent(db, now, {
      type: 'task.requeued',
      jobId: task.job_id,
      taskIndex: num(task.idx),
      worker: task.worker,
      data: { reason: 'lease expired' },
    });
    await settleJob(db, dialect, now, task.job_id);
  }
  return requeued;
}

export { setWorkerState, runningCount };
