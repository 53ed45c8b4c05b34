import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Insertable, type Kysely } from 'kysely';
import type { NewEvent } from '../contract.js';
import type { Dialect } from './dialect.js';
import { num } from './rows.js';
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
 *   A reader also waits (briefly, `OWN_WRITES_WAIT_MS`) until the events its own store
 *   committed are published, so a write and then a read on one manager see each other.
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
 * How long a read waits for its own store's committed events to be published. Normally the
 * first round publishes them; it takes longer only while an older transaction runs (a
 * house-keeping batch, a staging slice: ≤ ~100 ms), and a long one is not waited out.
 */
const OWN_WRITES_WAIT_MS = 500;

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

/** What a transaction appended: its last event's id and (PostgreSQL) its transaction id. */
export interface Appended {
  lastId: number;
  xid: string | null;
}

/** Appends what the transaction recorded; call last, right before COMMIT. */
export async function flushEvents(
  trx: Kysely<Database>,
  dialect: Dialect,
): Promise<Appended | undefined> {
  const rows = buffers.get(trx);
  buffers.delete(trx);
  if (!rows || rows.length === 0) return undefined;
  if (dialect === 'sqlite') {
    const r = await trx.insertInto('events').values(rows).returning('seq').execute();
    return { lastId: Math.max(...r.map((e) => num(e.seq))), xid: null };
  }
  // One fixed statement for any number of rows; `id` and `xid` come from column defaults.
  const column = <K extends keyof Insertable<EventsTable>>(k: K) => rows.map((r) => r[k] ?? null);
  const r = await sql<{ id: number; xid: string }>`
    insert into events (at, type, job_id, task_idx, worker, data)
    select u.at, u.type, u.job_id, u.task_idx, u.worker, u.data
    from unnest(${column('at')}::bigint[], ${column('type')}::text[], ${column('job_id')}::text[],
        ${column('task_idx')}::integer[], ${column('worker')}::text[], ${column('data')}::text[])
        with ordinality as u(at, type, job_id, task_idx, worker, data, n)
    order by u.n
    returning id, xid::text as xid`.execute(trx);
  return { lastId: Math.max(...r.rows.map((e) => num(e.id))), xid: r.rows[0]!.xid };
}

/**
 * One store's side of publication (PostgreSQL; on SQLite every method returns at once):
 * runs publication rounds before reads and remembers what this store committed, so that a
 * read waits for it.
 */
export class EventLog {
  /** The newest transaction id among this store's committed appends not yet seen published. */
  private ownXid: bigint | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  /** Notes a committed transaction's appended events (call after COMMIT). */
  committed(appended: Appended | undefined): void {
    if (appended?.xid == null) return;
    const xid = BigInt(appended.xid);
    if (this.ownXid === undefined || xid > this.ownXid) this.ownXid = xid;
  }

  /**
   * Publishes what is ready; call before a read that serves consumers. Waits up to
   * `waitMs` for this store's own committed events; true when they are published.
   */
  async publish(waitMs = OWN_WRITES_WAIT_MS): Promise<boolean> {
    if (this.dialect === 'sqlite') return true;
    const deadline = performance.now() + waitMs;
    for (let round = 0; ; round++) {
      const own = this.ownXid;
      let n: number;
      do n = await this.publishRound();
      while (n >= PUBLISH_TRANSACTIONS);
      if (own === undefined) return true;
      const waiting = await sql<{ waiting: boolean }>`
        select exists (
          select 1 from events where seq is null and xid <= ${own.toString()}::xid8
        ) as waiting`.execute(this.db);
      if (!waiting.rows[0]?.waiting) {
        if (this.ownXid === own) this.ownXid = undefined;
        return true;
      }
      if (performance.now() >= deadline) return false;
      // Another round held the lock, or an older transaction is finishing.
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
