import { sql, type Selectable } from 'kysely';
import { leaseLost, notFound } from '../../core/errors.js';
import { taskAfterAttempt } from '../../core/task-state.js';
import type { Dialect } from './dialect.js';
import type { Db } from './dispatch-sql.js';
import { recordEvent } from './events.js';
import {
  bumpCounts,
  fetchJobRow,
  lockJobRow,
  recountJob,
  releaseDependents,
  settleJob,
} from './job-flow.js';
import { stopRendering } from './jobs.js';
import { releaseLimits } from './limits.js';
import { num } from './rows.js';
import type { TasksTable, WorkersTable } from './schema.js';

/*
 * Workers, and the ends of tasks off the hot path: failure and hand-back reports, requeues of
 * a worker's tasks and of expired leases (see the top of `dispatch.ts` for the locks).
 */

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
export async function taskByLease(
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
export async function endReportedTask(
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
export async function recordTaskError(
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
