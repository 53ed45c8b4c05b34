import type { Kysely } from 'kysely';
import type { Dialect } from './dialect.js';
import { recordEvent } from './events.js';
import { parseLease } from './ids.js';
import { lockJobRow } from './job-flow.js';
import { num } from './rows.js';
import type { Database } from './schema.js';

type Db = Kysely<Database>;

/** What a worker sent on a lease that is no longer current. */
export type RefusedCall =
  | { kind: 'report'; outcome: 'completed' | 'failed' | 'handed-back' | 'interrupted' }
  | { kind: 'log' };

/**
 * Makes a refused late call visible: a worker that stalled (or was cut off) while its task
 * was given to another worker — or requeued, suspended, deleted — reports on a lease that is
 * no longer current. The refusal itself changes nothing; this writes, in the refusing
 * transaction, a `task.lease_lost` event and a line at the end of the lost attempt's log
 * saying what happened to the task, so the log no longer ends at "process started" while
 * the frame rendered twice.
 *
 * Only a lease handed out for an attempt of this worker counts (its `task.started` event
 * says so): a forged or garbled lease writes nothing. Once per attempt and kind of call: the
 * spooled log batches of a worker that comes back are refused one by one, and say so once.
 */
export async function recordLeaseLoss(
  db: Db,
  dialect: Dialect,
  now: number,
  workerName: string,
  lease: string,
  call: RefusedCall,
): Promise<void> {
  const parts = parseLease(lease);
  if (!parts) return;
  const { jobId, index, attempt } = parts;
  // Lock order as everywhere: the job row before its task; it also makes two refusals for
  // one attempt take their log sequence numbers one after the other (PostgreSQL).
  if (!(await lockJobRow(db, dialect, jobId))) return;
  const task = await db
    .selectFrom('tasks')
    .select(['state', 'worker', 'lease', 'attempt', 'log_seq'])
    .where('job_id', '=', jobId)
    .where('idx', '=', index)
    .executeTakeFirst();
  if (!task || attempt > num(task.attempt) || task.lease === lease) return;

  const events = await db
    .selectFrom('events')
    .select(['id', 'at', 'type', 'data'])
    .where('job_id', '=', jobId)
    .where('task_idx', '=', index)
    .where('worker', '=', workerName)
    .where('type', 'in', ['task.started', 'task.requeued', 'task.lease_lost'])
    // Insertion order: on PostgreSQL `seq` is given later, by publication (`events.ts`).
    .orderBy('id')
    .execute();
  const data = (e: { data: string }) => JSON.parse(e.data) as Record<string, unknown>;
  const started = events.find((e) => e.type === 'task.started' && data(e).attempt === attempt);
  if (!started) return;
  const said = events.some(
    (e) =>
      e.type === 'task.lease_lost' && data(e).attempt === attempt && data(e).refused === call.kind,
  );
  if (said) return;
  // Why this worker lost it: the requeue of its attempt (expiry, stall, restart), if any.
  const requeue = events.find((e) => e.type === 'task.requeued' && num(e.id) > num(started.id));
  const reason = requeue ? (data(requeue).reason as string | undefined) : undefined;

  const state = task.state;
  const current = num(task.attempt);
  let fate: string;
  if (current > attempt && task.worker !== null) {
    fate = `the task was given to ${task.worker} (attempt ${current}, ${state})`;
  } else if (state === 'queued') {
    fate = 'the task is queued again';
  } else {
    fate = `the task is ${state}`;
  }
  const what = call.kind === 'report' ? `report (${call.outcome})` : 'log output';
  const requeued = requeue
    ? `; requeued at ${new Date(num(requeue.at)).toISOString()}${reason ? ` (${reason})` : ''}`
    : '';
  const line = `[lease lost: ${what} from ${workerName} refused at ${new Date(now).toISOString()}: this attempt no longer holds the task${requeued}; ${fate}. Whatever this attempt did after losing its lease is not counted, and its frames may render again.]\n`;

  await recordEvent(db, now, {
    type: 'task.lease_lost',
    jobId,
    taskIndex: index,
    worker: workerName,
    data: {
      attempt,
      refused: call.kind,
      ...(call.kind === 'report' ? { outcome: call.outcome } : {}),
      ...(reason ? { reason } : {}),
      current: { state, worker: task.worker, attempt: current },
    },
  });

  const last = await db
    .selectFrom('task_logs')
    .select((eb) => eb.fn.max('seq').as('seq'))
    .where('job_id', '=', jobId)
    .where('idx', '=', index)
    .where('attempt', '=', attempt)
    .executeTakeFirst();
  let seq = num(last?.seq ?? 0) + 1;
  // The attempt is still the task's latest (requeued, not claimed again): its counter
  // numbers the next line, so keep it in step.
  if (current === attempt) seq = Math.max(seq, num(task.log_seq) + 1);
  await db
    .insertInto('task_logs')
    .values({ job_id: jobId, idx: index, attempt, seq, at: now, stream: 'system', text: line })
    .execute();
  if (current === attempt) {
    await db
      .updateTable('tasks')
      .set({ log_seq: seq })
      .where('job_id', '=', jobId)
      .where('idx', '=', index)
      .where('attempt', '=', attempt)
      .execute();
  }
}
