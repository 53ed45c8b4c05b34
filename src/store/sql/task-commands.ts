import type { Kysely } from 'kysely';
import { conflict, invalid, notFound } from '../../core/errors.js';
import type { TaskState } from '../../core/job-spec.js';
import type { TaskCommand } from '../contract.js';
import type { Dialect } from './dialect.js';
import { recordEvent } from './events.js';
import {
  lockJobRow,
  pendingReasonForDependencies,
  recountJob,
  refreshFrameDependentTasks,
  releaseDependents,
  settleJob,
  unmetDependencies,
} from './job-flow.js';
import { stopRendering } from './jobs.js';
import type { Database } from './schema.js';

type Db = Kysely<Database>;

/** Most tasks one command names one by one (each is a bound parameter of one statement). */
export const MAX_CHOSEN_TASKS = 10_000;

/** The states a command moves tasks from (a task already there, or finished, is left alone). */
const from: Record<TaskCommand, readonly TaskState[]> = {
  suspend: ['queued', 'pending'],
  resume: ['suspended'],
  complete: ['queued', 'pending', 'suspended', 'failed'],
  fail: ['queued', 'pending', 'suspended'],
};

/**
 * A wrangler's command on chosen tasks of a job (Deadline's task commands), in one
 * transaction: `suspend` (rendering ones are stopped), `resume`, `complete` (marked done
 * without rendering; limits freed), `fail`. Then the job follows, as if its tasks had got
 * there by themselves: every task completed → the job completes (on-complete action, the
 * jobs waiting for it released); a task failed → the job fails, as when a task runs out of
 * retries; tasks resumed in a suspended job → the job is active again (or pending, while it
 * waits for dependencies). Recorded as a `job.updated` event naming the command and tasks.
 */
export async function commandTasks(
  db: Db,
  dialect: Dialect,
  now: number,
  jobId: string,
  indexes: readonly number[] | 'all',
  command: TaskCommand,
): Promise<void> {
  const row = await lockJobRow(db, dialect, jobId);
  if (!row) throw notFound(`job ${jobId}`);
  if (row.state === 'deleted' || row.state === 'archived') {
    throw conflict(`cannot ${command} tasks of a job that is ${row.state}`);
  }
  const taskCount = Number(row.task_count);
  if (indexes !== 'all' && indexes.length > MAX_CHOSEN_TASKS) {
    throw invalid('tasks', `at most ${MAX_CHOSEN_TASKS} tasks at once (or all of them)`);
  }
  const bad = (indexes === 'all' ? [] : indexes).find(
    (i) => !Number.isInteger(i) || i < 0 || i >= taskCount,
  );
  if (bad !== undefined) {
    throw invalid('tasks', `task ${bad} does not exist (the job has tasks 0-${taskCount - 1})`);
  }
  if (indexes.length === 0) return;
  const frameDependent = Number(row.frame_dependent) === 1;
  const to: TaskState =
    command === 'suspend'
      ? 'suspended'
      : command === 'resume'
        ? frameDependent
          ? 'pending'
          : 'queued'
        : command === 'complete'
          ? 'completed'
          : 'failed';

  const chosen = indexes === 'all' ? undefined : indexes;
  if (command !== 'resume') await stopRendering(db, jobId, to, chosen);
  const done = command === 'complete' || command === 'fail';
  let update = db
    .updateTable('tasks')
    .set({
      state: to,
      ...(done ? { finished_at: now } : {}),
      ...(command === 'complete' ? { progress: 100, status: 'completed by a user' } : {}),
    })
    .where('job_id', '=', jobId)
    .where('state', 'in', [...from[command], ...(done ? [to] : [])]);
  if (chosen) update = update.where('idx', 'in', chosen);
  await update.execute();
  await recordEvent(db, now, {
    type: 'job.updated',
    jobId,
    data: { taskCommand: command, tasks: chosen ? [...chosen] : 'all' },
  });
  const counts = await recountJob(db, jobId);
  if (frameDependent) await refreshFrameDependentTasks(db, jobId);
  const setJob = (state: string, extra: Record<string, unknown> = {}) =>
    db
      .updateTable('jobs')
      .set({ state, ...extra })
      .where('id', '=', jobId)
      .execute();

  if (command === 'fail' && row.state !== 'failed' && row.state !== 'completed') {
    await setJob('failed', { pending_reason: '', finished_at: now });
    await recordEvent(db, now, {
      type: 'job.failed',
      jobId,
      data: { reason: `tasks ${chosen ? chosen.join(',') : '(all)'} failed by a user` },
    });
    await releaseDependents(db, dialect, now, jobId);
    return;
  }
  if (command === 'complete' && counts.completed >= taskCount && row.state !== 'completed') {
    // Active for a moment, so settling completes it the one way jobs complete.
    await setJob('queued', { pending_reason: '', held_for: '' });
  }
  if (command === 'resume' && row.state === 'suspended') {
    const waiting = !frameDependent && (await unmetDependencies(db, jobId)).length > 0;
    const reason = waiting ? await pendingReasonForDependencies(db, jobId) : '';
    await setJob(waiting ? 'pending' : 'queued', { pending_reason: reason });
    await recordEvent(db, now, { type: 'job.resumed', jobId, data: {} });
  }
  await settleJob(db, dialect, now, jobId);
}

/**
 * Brings a deleted job back (Deadline's `undelete`) while its tasks are still there (house
 * keeping purges them `purgeDeletedAfterMs` after deletion): suspended — its unfinished tasks
 * were suspended when it was deleted — or completed when every task had. The jobs waiting for
 * it are judged again (one told "deleted" waits for it again).
 */
export async function undeleteJob(
  db: Db,
  dialect: Dialect,
  now: number,
  jobId: string,
): Promise<void> {
  const row = await lockJobRow(db, dialect, jobId);
  if (!row) throw notFound(`job ${jobId}`);
  if (row.state !== 'deleted') throw conflict(`job ${jobId} is ${row.state}, not deleted`);
  const tasks = await db
    .selectFrom('tasks')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('job_id', '=', jobId)
    .executeTakeFirst();
  if (row.tasks_purged_at !== null || Number(tasks?.n ?? 0) < Number(row.task_count)) {
    throw conflict(`job ${jobId} was deleted long enough ago that its tasks are purged`);
  }
  const counts = await recountJob(db, jobId);
  const state = counts.completed >= Number(row.task_count) ? 'completed' : 'suspended';
  await db
    .updateTable('jobs')
    .set({ state, deleted_at: null, pending_reason: '' })
    .where('id', '=', jobId)
    .execute();
  await recordEvent(db, now, { type: 'job.updated', jobId, data: { undeleted: true, state } });
  await releaseDependents(db, dialect, now, jobId);
}
