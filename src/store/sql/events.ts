import { sql, type Insertable, type Kysely, type Selectable } from 'kysely';
import type { NewEvent } from '../contract.js';
import type { Dialect } from './dialect.js';
import type { Database, EventsTable } from './schema.js';

/**
 * The event log's write side. Events are buffered per transaction and appended just before
 * it commits, so the log and the state never disagree.
 *
 * Why buffered: consumers read the log by `seq` from a cursor. On PostgreSQL a sequence
 * value is handed out at INSERT, not at COMMIT, so a transaction that inserted seq 10 may
 * commit after one that inserted seq 11 — a consumer that already read 11 would never see
 * 10. Appending under a transaction-scoped advisory lock held until commit makes `seq` order
 * commit order; buffering keeps that critical section to one INSERT and the COMMIT. SQLite
 * has one writer at a time, so it needs no lock.
 */

/** The advisory lock key that orders event appends across managers ("DROVER" in hex). */
const EVENT_LOG_LOCK = 0x44524f564552;

const buffers = new WeakMap<object, Array<Insertable<EventsTable>>>();

function rowOf(at: number, event: NewEvent): Insertable<EventsTable> {
  return {
    at,
    type: event.type,
    job_id: event.jobId ?? null,
    task_idx: event.taskIndex ?? null,
    worker: event.worker ?? null,
    data: JSON.stringify(event.data ?? {}),
  };
}

/** Starts buffering the events recorded with `trx`. */
export function beginEvents(trx: object): void {
  buffers.set(trx, []);
}

/** Records an event as part of the transaction `db`. */
export async function recordEvent(
  db: Kysely<Database>,
  at: number,
  event: NewEvent,
): Promise<void> {
  const buffer = buffers.get(db);
  if (buffer) {
    buffer.push(rowOf(at, event));
    return;
  }
  // Not inside a buffered transaction: append at once, in order.
  await appendEvents(db, 'sqlite', [rowOf(at, event)]);
}

/** Appends what the transaction recorded; call last, right before COMMIT. */
export async function flushEvents(
  trx: Kysely<Database>,
  dialect: Dialect,
): Promise<Array<Selectable<EventsTable>>> {
  const buffer = buffers.get(trx);
  buffers.delete(trx);
  if (!buffer || buffer.length === 0) return [];
  return appendEvents(trx, dialect, buffer);
}

async function appendEvents(
  trx: Kysely<Database>,
  dialect: Dialect,
  rows: Array<Insertable<EventsTable>>,
): Promise<Array<Selectable<EventsTable>>> {
  if (dialect === 'sqlite') return trx.insertInto('events').values(rows).returningAll().execute();
  // One statement takes the lock and appends: every row needs the lock's one-row subquery,
  // so the lock is held before the first row (and its `seq`) is made.
  const column = <K extends keyof Insertable<EventsTable>>(k: K) => rows.map((r) => r[k] ?? null);
  const r = await sql<Selectable<EventsTable>>`
    insert into events (at, type, job_id, task_idx, worker, data)
    select u.at, u.type, u.job_id, u.task_idx, u.worker, u.data
    from (select pg_advisory_xact_lock(${EVENT_LOG_LOCK})) as l,
      unnest(${column('at')}::bigint[], ${column('type')}::text[], ${column('job_id')}::text[],
        ${column('task_idx')}::integer[], ${column('worker')}::text[], ${column('data')}::text[])
        with ordinality as u(at, type, job_id, task_idx, worker, data, n)
    order by u.n
    returning *`.execute(trx);
  return r.rows;
}

/** Appends one event in its own (already open) transaction and returns it. */
export async function appendOneEvent(
  trx: Kysely<Database>,
  dialect: Dialect,
  at: number,
  event: NewEvent,
): Promise<Selectable<EventsTable>> {
  const [row] = await appendEvents(trx, dialect, [rowOf(at, event)]);
  return row!;
}
