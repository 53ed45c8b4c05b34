import { setTimeout as sleep } from 'node:timers/promises';
import { DroverError } from '../../core/errors.js';
import { sql, type Insertable, type Kysely } from 'kysely';
import type { FarmEvent } from '../../core/types.js';
import { MAX_PAGE, type EventQuery, type NewEvent } from '../contract.js';
import type { Dialect } from './dialect.js';
import type { StoreKit } from './kit.js';
import { eventFromRow, num } from './rows.js';
import type { Database, EventsTable } from './schema.js';

/**
 * The event log. Events are buffered per transaction and appended just before it commits, so
 * the log and the state never disagree. Consumers (event plugins, `GET /events?after=`, the
 * SSE stream) read it by `seq` from a cursor, so the one rule is: once a reader has seen seq
 * N, no event may ever get a seq below N — else an event that commits late is skipped.
 *
 * SQLite has one writer at a time: the `seq` given at INSERT is commit order. Nothing more.
 *
 * PostgreSQL hands out sequence values at INSERT, not at COMMIT, so a transaction that got
 * 10 may commit after one that got 11. Until migration 011 every appending transaction took
 * one advisory lock held to COMMIT, which made all writes on all managers serial. Now:
 *
 * - Writers take no lock. An event row gets an insertion `id` (bigserial) and its
 *   transaction's id (`xid`, `pg_current_xact_id()`); its `seq` stays null.
 * - A publisher (`drover_publish_events`, migration 011: one statement, one round trip)
 *   gives `seq` = max(seq) + 1, 2, … to the unpublished events of transactions older than
 *   the oldest one still running in this database (the horizon: `pg_stat_activity`'s
 *   `backend_xid`, bounded by the snapshot's xmax; `pg_snapshot_xmin` would count every
 *   database on the server). Those are finished, and any transaction that can still commit
 *   has a later xid. Under `pg_try_advisory_xact_lock`: a round that cannot get the lock
 *   skips (another is publishing); writers never wait for it.
 * - Within a round, transactions go in the order they appended (their first `id`), each
 *   one's events together. A committed transaction that must still wait for an older
 *   running one holds back those that appended after it: appending is the last step before
 *   COMMIT, so a transaction that waited for another's row lock, or read what it committed,
 *   appended after it and is published after it. (Ordering by xid alone would not give
 *   that: an xid is taken at a transaction's first write, before it waits for locks.)
 * - Readers read only published events (`seq is not null`) by seq, and run a round first
 *   (`EventLog.publish`): an event that commits late gets a seq above everything read.
 *   A read also waits (briefly, `READ_WAIT_MS`) until the events committed before it are
 *   published, so a write and then a read see each other, through any manager.
 * - An aborted transaction's events never exist; nothing to skip.
 *
 * The caveat: a long-running transaction in Drover's database that has written anything
 * (taken an xid) holds publication back until it ends: events committed after it started
 * reach no consumer meanwhile (nothing is lost; they appear, in order, when it ends).
 * Drover's own transactions are short (house keeping and staging commit every batch); keep
 * ad-hoc write sessions on the database short too. Read-only transactions take no xid and
 * hold nothing back; nor do transactions in other databases on the server.
 */

/** Transactions one publication round numbers at most (a round is one short UPDATE). */
const PUBLISH_TRANSACTIONS = 2000;
/**
 * How long a read waits for events committed before it to be published. Normally the first
 * round publishes them; it takes longer only while an older transaction runs (a
 * house-keeping batch, a staging slice: ≤ ~100 ms), and a long one is not waited out.
 */
const READ_WAIT_MS = 500;

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
  // Not inside a buffered transaction: append at once.
  await db.insertInto('events').values(rowOf(at, event)).execute();
}

/**
 * Appends what the transaction recorded; call last, right before COMMIT. Returns the last
 * appended event's id (insertion order), if any.
 */
export async function flushEvents(
  trx: Kysely<Database>,
  dialect: Dialect,
): Promise<number | undefined> {
  const rows = buffers.get(trx);
  buffers.delete(trx);
  if (!rows || rows.length === 0) return undefined;
  if (dialect === 'sqlite') {
    const r = await trx.insertInto('events').values(rows).returning('seq').execute();
    return Math.max(...r.map((e) => num(e.seq)));
  }
  // One fixed statement for any number of rows; `id` and `xid` come from column defaults.
  const column = <K extends keyof Insertable<EventsTable>>(k: K) => rows.map((r) => r[k] ?? null);
  const r = await sql<{ id: number }>`
    insert into events (at, type, job_id, task_idx, worker, data)
    select u.at, u.type, u.job_id, u.task_idx, u.worker, u.data
    from unnest(${column('at')}::bigint[], ${column('type')}::text[], ${column('job_id')}::text[],
        ${column('task_idx')}::integer[], ${column('worker')}::text[], ${column('data')}::text[])
        with ordinality as u(at, type, job_id, task_idx, worker, data, n)
    order by u.n
    returning id`.execute(trx);
  return Math.max(...r.rows.map((e) => num(e.id)));
}

/**
 * The event log's read side, and consumers' cursors. On PostgreSQL every read runs a
 * publication round first (`publish`); on SQLite events are readable as they commit.
 */
export class EventLog {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  /** Published events only (`seq` given), by seq. */
  async list(query: EventQuery): Promise<FarmEvent[]> {
    await this.publish();
    let q = this.db
      .selectFrom('events')
      .selectAll()
      .where('seq', 'is not', null)
      .where('seq', '>', query.after ?? 0);
    if (query.types && query.types.length > 0) q = q.where('type', 'in', query.types);
    if (query.jobId) q = q.where('job_id', '=', query.jobId);
    const rows = await q
      .orderBy('seq')
      .limit(Math.min(query.limit ?? 100, MAX_PAGE))
      .execute();
    return rows.map(eventFromRow);
  }

  /** The newest published seq (0 for an empty log). */
  async latestSeq(): Promise<number> {
    await this.publish();
    const row = await this.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('seq', 'is not', null)
      .executeTakeFirst();
    return num(row?.seq ?? 0);
  }

  /**
   * The event appended with insertion id `id` (`flushEvents`) once it is published, waiting
   * up to `waitMs`; undefined while it is not.
   */
  async fetchPublished(id: number, waitMs: number): Promise<FarmEvent | undefined> {
    await this.publish(waitMs);
    const row = await this.db
      .selectFrom('events')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    return row.seq === null ? undefined : eventFromRow(row);
  }

  async fetchCursor(consumer: string): Promise<number | undefined> {
    const row = await this.db
      .selectFrom('event_cursors')
      .select('seq')
      .where('consumer', '=', consumer)
      .executeTakeFirst();
    return row ? num(row.seq) : undefined;
  }

  /** The statement that saves a consumer's cursor (the store runs it, to tell a full disk). */
  saveCursor(consumer: string, seq: number): Promise<unknown> {
    return this.db
      .insertInto('event_cursors')
      .values({ consumer, seq })
      .onConflict((oc) => oc.column('consumer').doUpdateSet({ seq }))
      .execute();
  }

  /**
   * Publishes what is ready; call before a read that serves consumers. Then waits, up to
   * `waitMs`, until every event committed before the call is published too (one still
   * unpublished waits for an older transaction that is finishing, or for a round another
   * reader was running), so a write and a later read see each other, on any manager. True
   * when nothing committed before the call is left unpublished.
   */
  async publish(waitMs = READ_WAIT_MS): Promise<boolean> {
    if (this.dialect === 'sqlite') return true;
    const deadline = performance.now() + waitMs;
    let before = Number.MAX_SAFE_INTEGER;
    for (let round = 0; ; round++) {
      let n: number;
      do n = await this.publishRound();
      while (n >= PUBLISH_TRANSACTIONS);
      // The newest committed event still unpublished, of those committed before the call
      // (ids are drawn before COMMIT, so anything committed later that is below it counts
      // too: at worst a little more waiting).
      const r = await sql<{ id: number | string | null }>`
        select max(id) as id from events where seq is null and id <= ${before}`.execute(this.db);
      const waiting = r.rows[0]?.id ?? null;
      if (waiting === null) return true;
      before = num(waiting);
      if (performance.now() >= deadline) return false;
      await sleep(Math.min(2 ** round, 20));
    }
  }

  /** Events published by this round (0 when nothing is ready or another round runs). */
  private async publishRound(): Promise<number> {
    const r = await sql<{ n: number }>`
      select drover_publish_events(${PUBLISH_TRANSACTIONS}) as n`.execute(this.db);
    return Math.max(0, num(r.rows[0]?.n ?? 0));
  }
}

/** How long `appendEvent` waits for its event to be published (PostgreSQL). */
const APPEND_WAIT_MS = 10_000;

/**
 * On PostgreSQL the event has its seq once it is published: waits for that, up to
 * `APPEND_WAIT_MS` (only a long transaction in the database makes it wait at all).
 */
export async function appendEvent(
  kit: StoreKit,
  log: EventLog,
  event: NewEvent,
): Promise<FarmEvent> {
  const id = await kit.tx(async (db, now) => {
    await recordEvent(db, now, event);
    return flushEvents(db, kit.kind);
  });
  const appended = await log.fetchPublished(id!, APPEND_WAIT_MS);
  if (!appended) {
    throw new DroverError(
      'unavailable',
      `event ${event.type} was appended, but a long-running transaction on the database holds its publication back; consumers will see it when that transaction ends`,
    );
  }
  return appended;
}
