import { sql, type Kysely } from 'kysely';
import { leaseLost } from '../../core/errors.js';
import { MAX_TASK_LOG_BYTES, type LogAppend } from '../../core/worker-protocol.js';
import type { Dialect } from './dialect.js';
import { num } from './rows.js';
import type { Database } from './schema.js';

type Db = Kysely<Database>;

/**
 * A task attempt's log is bounded (`MAX_TASK_LOG_BYTES`, 4 MiB). Past the bound it keeps its
 * head (about the first 1 MiB: what ran, with which settings) and its latest tail (the rest:
 * where a failing render prints its error), with one marker line between them saying how
 * much was dropped. Each append past the bound drops the oldest lines after the marker, so
 * the tail stays current while the render goes on. Sequence numbers only grow: a reader
 * following the log (`after`) never sees a line twice and never misses a new one.
 */
export const LOG_HEAD_BYTES = 1024 * 1024;

const MIB = 1024 * 1024;

/** The marker line between head and tail. */
export function trimMarker(droppedBytes: number): string {
  return `\n[log trimmed: ${droppedBytes} bytes dropped here; an attempt's log keeps its first ${LOG_HEAD_BYTES / MIB} MiB and its latest ${(MAX_TASK_LOG_BYTES - LOG_HEAD_BYTES) / MIB} MiB]\n`;
}
const MARKER_COUNT = /^\n\[log trimmed: (\d+) bytes dropped/;

/** A text column's size in bytes, in SQL. */
function byteSize(dialect: Dialect) {
  return dialect === 'postgres'
    ? sql<number>`octet_length(text)`.as('size')
    : sql<number>`length(cast(text as blob))`.as('size');
}

interface Row {
  stream: string;
  text: string;
}

/** Appends log chunks for the lease's task, keeping the attempt's log within its bound. */
export async function appendLog(
  db: Db,
  dialect: Dialect,
  now: number,
  workerName: string,
  a: LogAppend,
): Promise<void> {
  // One statement checks the lease, sets progress and status, and holds the task's row lock
  // until commit: two appends for one lease run one after the other (sequence numbers and
  // the byte bound stay exact).
  const touch: Record<string, unknown> = { log_seq: sql`log_seq` };
  if (a.progress !== undefined) touch.progress = a.progress;
  if (a.status !== undefined) touch.status = a.status;
  const task = await db
    .updateTable('tasks')
    .set(touch)
    .where('lease', '=', a.lease)
    .where('worker', '=', workerName)
    .where('state', '=', 'rendering')
    .returning(['job_id', 'idx', 'attempt', 'log_bytes', 'log_seq', 'log_batch', 'log_trim_seq'])
    .executeTakeFirst();
  if (!task) throw leaseLost(a.lease);
  // A batch sent again (its number taken already): progress and status above, nothing more.
  if (a.batch !== undefined && a.batch <= num(task.log_batch)) return;

  const attemptLog = () =>
    db
      .selectFrom('task_logs')
      .where('job_id', '=', task.job_id)
      .where('idx', '=', task.idx)
      .where('attempt', '=', task.attempt);
  /** Bytes of log text stored for the attempt, the marker line left out. */
  let bytes = num(task.log_bytes);
  let seq = num(task.log_seq);
  let trimSeq = num(task.log_trim_seq);
  const rows: Row[] = a.chunks.map((c) => ({ stream: c.stream, text: c.text }));
  const incoming = rows.reduce((n, r) => n + Buffer.byteLength(r.text), 0);
  let excess = bytes + incoming - MAX_TASK_LOG_BYTES;

  if (excess > 0) {
    let dropped = 0;
    if (trimSeq === 0) {
      // First time past the bound: the first line after the head becomes the marker.
      const sizes = await attemptLog()
        .select(['seq', byteSize(dialect)])
        .orderBy('seq')
        .execute();
      let head = 0;
      const first = sizes.find((r) => {
        head += num(r.size);
        return head > LOG_HEAD_BYTES;
      });
      if (first) {
        // Its own text is the first dropped.
        trimSeq = num(first.seq);
        dropped += num(first.size);
        bytes -= num(first.size);
        excess -= num(first.size);
      } else {
        // Everything stored fits in the head (a huge append): the marker goes after it.
        trimSeq = ++seq;
        await db
          .insertInto('task_logs')
          .values({
            job_id: task.job_id,
            idx: task.idx,
            attempt: task.attempt,
            seq: trimSeq,
            at: now,
            stream: 'system',
            text: trimMarker(0),
          })
          .execute();
      }
    } else {
      const marker = await attemptLog()
        .select('text')
        .where('seq', '=', trimSeq)
        .executeTakeFirst();
      dropped = Number(MARKER_COUNT.exec(marker?.text ?? '')?.[1] ?? 0);
    }
    // Then the oldest tail lines, until the new chunks fit.
    while (excess > 0) {
      const page = await attemptLog()
        .select(['seq', byteSize(dialect)])
        .where('seq', '>', trimSeq)
        .orderBy('seq')
        .limit(64)
        .execute();
      if (page.length === 0) break;
      let upTo = trimSeq;
      for (const r of page) {
        if (excess <= 0) break;
        upTo = num(r.seq);
        excess -= num(r.size);
        bytes -= num(r.size);
        dropped += num(r.size);
      }
      await db
        .deleteFrom('task_logs')
        .where('job_id', '=', task.job_id)
        .where('idx', '=', task.idx)
        .where('attempt', '=', task.attempt)
        .where('seq', '>', trimSeq)
        .where('seq', '<=', upTo)
        .execute();
    }
    // Still too much (one append larger than the tail): keep the end of what came.
    while (excess > 0 && rows.length > 0) {
      const first = Buffer.from(rows[0]!.text);
      if (first.length <= excess) {
        rows.shift();
        excess -= first.length;
        dropped += first.length;
        continue;
      }
      rows[0] = { stream: rows[0]!.stream, text: first.subarray(excess).toString() };
      dropped += excess;
      excess = 0;
    }
    await db
      .updateTable('task_logs')
      .set({ stream: 'system', text: trimMarker(dropped) })
      .where('job_id', '=', task.job_id)
      .where('idx', '=', task.idx)
      .where('attempt', '=', task.attempt)
      .where('seq', '=', trimSeq)
      .execute();
  }

  if (rows.length > 0) {
    await db
      .insertInto('task_logs')
      .values(
        rows.map((r) => ({
          job_id: task.job_id,
          idx: task.idx,
          attempt: task.attempt,
          seq: ++seq,
          at: now,
          stream: r.stream,
          text: r.text,
        })),
      )
      .execute();
    bytes += rows.reduce((n, r) => n + Buffer.byteLength(r.text), 0);
  }
  if (rows.length === 0 && a.batch === undefined && trimSeq === num(task.log_trim_seq)) return;
  await db
    .updateTable('tasks')
    .set({
      log_bytes: bytes,
      log_seq: seq,
      log_trim_seq: trimSeq,
      ...(a.batch === undefined ? {} : { log_batch: a.batch }),
    })
    .where('job_id', '=', task.job_id)
    .where('idx', '=', task.idx)
    .execute();
}
