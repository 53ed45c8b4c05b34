import { leaseLost, notFound } from '../../core/errors.js';
import { activeJobState } from '../../core/job-state.js';
import type { TaskAssignment, WorkerState } from '../../core/types.js';
import type { TaskReport } from '../../core/worker-protocol.js';
import { workerAfterWork } from '../../core/worker-state.js';
import type { WorkResult } from '../contract.js';
import { claim, profileOf, type DispatchSettings } from './claim.js';
import type { Dialect } from './dialect.js';
import {
  ADD_COUNT_DELTA,
  COMPLETE_BY_LEASE,
  COMPLETE_TASK,
  COUNTED_JOB,
  SET_JOB_ACTIVE_STATE,
  SET_WORKER_STATE,
  TAKE_TURN,
  TASK_BY_LEASE,
  TOUCH_WORKER,
  TRY_LOCK_JOB,
  UPDATE_COUNTERS,
  run,
  type Db,
  type Row,
} from './dispatch-sql.js';
import { recordEvent } from './events.js';
import { foldCountDeltas } from './job-counts.js';
import { lockJobRow, refreshFrameDependents, settleJob } from './job-flow.js';
import { recordLeaseLoss } from './lease-loss.js';
import { releaseLimits } from './limits.js';
import { num } from './rows.js';
import { endReportedTask, recordTaskError, taskByLease } from './task-ends.js';

/*
 * Dispatch: a worker's report on the task it finished and its claim of the next one, in one
 * transaction (`work`), and everything else that ends a task (reports alone, requeues,
 * expired leases). One implementation for every case and both dialects: the hot statements
 * are fixed SQL text per dialect (`run`: SQLite keeps each text prepared, see
 * `sqlite/index.ts`), the rare paths (failures, retries, error limits, bad workers, job
 * completion, dependents) are the general functions of `job-flow.ts`, called in the same
 * transaction. Nothing is tried and rolled back. The fixed SQL texts are in `dispatch-sql.ts`,
 * claims in `claim.ts`, and the ends of tasks off the hot path in `task-ends.ts`.
 *
 * Job counters (the `n_*` columns) on the hot path. A claim and a completion change a job's
 * counters by deltas collected during the call and written at the very end (`finish`), just
 * before the event append and COMMIT. SQLite writes them to the job row. PostgreSQL adds them
 * to this connection's delta row of the job (`job-counts.ts`, migration 014), which no other
 * transaction writes: claims and completions of one job on many connections and managers do
 * not queue behind one row lock held to COMMIT. Only a call that changes the job's rendering
 * count can move the job between queued, rendering and completed: a worker that reports a
 * task and claims the next of the same job (the steady state on a big job) moves nothing.
 * Of the calls that do change it, most take no turn on the job:
 * - a claim that finds its job already rendering (a worker's first claim, or one moving to
 *   another job) moves no state;
 * - a completion without a claim of the same job (a worker moving to another job, or with
 *   nothing left to claim) moves the job, if at all, after COMMIT: the store then reads the
 *   job's committed counters (`lagsCounters`) and, when the job is left rendering with
 *   nothing rendering, settles it under `FOR UPDATE` (queued, or completed with all that
 *   follows). Of the last tasks completing at once, the call that commits last sees the rest.
 * A job's first claim (queued → rendering, `job.started`) and a completion of a task that
 * frame-dependent jobs wait on take a turn on the job (`FOR NO KEY UPDATE`, to COMMIT) and
 * read the counters after it, so each sees every turn taken before its own. Such a
 * completion queues the job only when no other call holds it (`noClaimInFlight`): a claim in
 * flight that found the job rendering is not in the counters it read. House keeping settles
 * what a crash between a COMMIT and its settling, or a claim that rendered nothing after all,
 * leaves behind (`settleIdleRendering`).
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
export class Cycle {
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
 * rendering. Of such calls only a job's first claim, and a completion of a task that
 * frame-dependent jobs wait on, take a turn on the job (`FOR NO KEY UPDATE`, to COMMIT) and
 * then read the counters: every turn taken before committed first. A claim of a job found
 * rendering moves nothing; a completion is settled after COMMIT (`settleAfterCommit`; see the
 * top of this file).
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
