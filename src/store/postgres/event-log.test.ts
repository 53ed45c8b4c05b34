import { sql, type Kysely } from 'kysely';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { FarmEvent } from '../../core/types.js';
import {
  TestDatabases,
  TEST_POSTGRES_URL,
  withPostgres,
} from '../conformance/postgres-databases.js';
import type { NewEvent } from '../contract.js';
import { migrations } from '../migrations/index.js';
import { beginEvents, flushEvents, recordEvent } from '../sql/events.js';
import { migrate } from '../sql/migrate.js';
import type { Database } from '../sql/schema.js';
import type { SqlStore } from '../sql/store.js';
import { createDatabase, dropDatabase, openPostgresDatabase, openPostgresStore } from './index.js';

/**
 * The event log on PostgreSQL (`src/store/sql/events.ts`): writers append without waiting for
 * one another, and a consumer reading by cursor never skips an event whose transaction
 * commits after later ones were read. Writers here are transactions held open on purpose,
 * appending through the store's own write path (`recordEvent` + `flushEvents`, as every
 * store transaction does); the consumer is a store reading with `listEvents`.
 */

/** How long a step that must not block may take before the test calls it blocked. */
const BLOCKED_MS = 5_000;

function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: blocked for ${BLOCKED_MS} ms`)),
      BLOCKED_MS,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A promise and its resolve, to hold a transaction open until the test lets it go. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

const tagged = (tag: string): NewEvent => ({ type: 'job.updated', data: { tag } });
const tagOf = (e: FarmEvent) => e.data.tag as string;

/**
 * A transaction on `db` that appends `events` (after running `first`, if given) and then
 * stays open until `release` resolves. `appended` resolves once its events are inserted.
 */
function openTransaction(
  db: Kysely<Database>,
  events: NewEvent[],
  release: Promise<void>,
  first?: (trx: Kysely<Database>) => Promise<void>,
): { appended: Promise<void>; committed: Promise<void> } {
  const appended = gate();
  const committed = db.transaction().execute(async (trx) => {
    beginEvents(trx);
    if (first) await first(trx);
    for (const e of events) await recordEvent(trx, Date.now(), e);
    await flushEvents(trx, 'postgres');
    appended.open();
    await release;
  });
  committed.catch(() => undefined);
  return { appended: appended.wait, committed };
}

/** Takes the transaction's xid now, as its first write would. */
const takeXid = async (trx: Kysely<Database>) => {
  await sql`select pg_current_xact_id()`.execute(trx);
};

await withPostgres('postgres: event log', () => {
  const dbs = new TestDatabases();
  const opened: Array<{ destroy(): Promise<void> } | SqlStore> = [];
  const closeAll = () =>
    Promise.all(opened.splice(0).map((o) => ('close' in o ? o.close() : o.destroy())));
  beforeAll(() => dbs.prepareTemplate(), 60_000);
  afterEach(closeAll, 60_000);
  afterAll(async () => {
    await closeAll();
    await dbs.dropAll();
  }, 60_000);

  const open = async (connections: number) => {
    const url = await dbs.clone();
    const writers = openPostgresDatabase(url, connections);
    const consumer = await openPostgresStore(url, { poolSize: 2 });
    opened.push(writers, consumer);
    return { writers, consumer };
  };

  it('a consumer that read past an uncommitted event still gets it when it commits last', async () => {
    const { writers, consumer } = await open(4);
    const t1 = gate();
    const t2 = gate();
    const t2Started = gate();
    // T2 takes its xid first; T1 appends A and stays open; then T2 appends B and commits.
    const b = openTransaction(writers, [tagged('B')], Promise.resolve(), async (trx) => {
      await takeXid(trx);
      t2Started.open();
      await t2.wait;
    });
    await within(t2Started.wait, 'T2 starting');
    const a = openTransaction(writers, [tagged('A')], t1.wait, takeXid);
    await within(a.appended, 'T1 appending A');
    t2.open();
    await within(b.committed, 'T2 appending B and committing while T1 is open');

    let cursor = 0;
    const seen: FarmEvent[] = [];
    const read = async () => {
      const events = await consumer.listEvents({ after: cursor });
      seen.push(...events);
      if (events.length > 0) cursor = events[events.length - 1]!.seq;
    };
    await read();
    expect(seen.map(tagOf)).toEqual(['B']);

    t1.open();
    await a.committed;
    await read();
    expect(seen.map(tagOf)).toEqual(['B', 'A']);
    expect(seen[1]!.seq).toBeGreaterThan(seen[0]!.seq);
    expect(await consumer.latestEventSeq()).toBe(seen[1]!.seq);
  });

  it('events appended after those of a still-open transaction wait for it, and keep append order', async () => {
    const { writers, consumer } = await open(4);
    const t1 = gate();
    // T1 takes its xid and appends A; T2 appends B after it and commits.
    const a = openTransaction(writers, [tagged('A1'), tagged('A2')], t1.wait, takeXid);
    await within(a.appended, 'T1 appending');
    const b = openTransaction(writers, [tagged('B')], Promise.resolve());
    await within(b.committed, 'T2 appending and committing while T1 is open');
    expect(await consumer.listEvents({})).toEqual([]);
    expect(await consumer.latestEventSeq()).toBe(0);

    // A read waits briefly for events committed before it: T1 ends meanwhile.
    const reading = consumer.listEvents({});
    t1.open();
    await a.committed;
    expect((await reading).map(tagOf)).toEqual(['A1', 'A2', 'B']);
  });

  it('a transaction that appended after another committed is never published before it', async () => {
    const { writers, consumer } = await open(4);
    // T_b takes its xid first, T_c next and stays open (it holds the horizon), T_a last.
    // T_a appends and commits; T_b appends after that and commits: T_b follows T_a (it could
    // have read what T_a wrote), though its xid is older. Ordering by xid alone would publish
    // T_b now, before T_a.
    const tb = gate();
    const tc = gate();
    const bStarted = gate();
    const b = openTransaction(writers, [tagged('B')], Promise.resolve(), async (trx) => {
      await takeXid(trx);
      bStarted.open();
      await tb.wait;
    });
    await within(bStarted.wait, 'T_b starting');
    const c = openTransaction(writers, [], tc.wait, takeXid);
    await within(c.appended, 'T_c starting');
    const a = openTransaction(writers, [tagged('A')], Promise.resolve(), takeXid);
    await within(a.committed, 'T_a committing');
    tb.open();
    await within(b.committed, 'T_b committing');

    expect(await consumer.listEvents({})).toEqual([]);
    tc.open();
    await c.committed;
    expect((await consumer.listEvents({})).map(tagOf)).toEqual(['A', 'B']);
  });

  it('many writers append at once without waiting for one another; a cursor reader sees each event once', async () => {
    const WRITERS = 8;
    const ROUNDS = 15;
    const { writers, consumer } = await open(WRITERS);

    // Round 0: every writer appends and holds its transaction open until all have appended.
    // With a lock held to COMMIT, the second append would wait for the first commit forever.
    const allIn = gate();
    const first = Array.from({ length: WRITERS }, (_, w) =>
      openTransaction(writers, [tagged(`w${w}-r0`)], allIn.wait),
    );
    await within(
      Promise.all(first.map((t) => t.appended)),
      `${WRITERS} transactions appending while all are open`,
    );
    allIn.open();
    await Promise.all(first.map((t) => t.committed));

    // Then rounds of 1–3 events per transaction, commits in no set order, while a consumer
    // reads from its cursor in small pages.
    const expected = new Set(first.map((_, w) => `w${w}-r0`));
    let writing = true;
    const seen: FarmEvent[] = [];
    const reader = (async () => {
      let cursor = 0;
      for (;;) {
        const done = !writing;
        const page = await consumer.listEvents({ after: cursor, limit: 7 });
        seen.push(...page);
        if (page.length > 0) cursor = page[page.length - 1]!.seq;
        else if (done) return;
        else await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        for (let r = 1; r <= ROUNDS; r++) {
          const tags = Array.from({ length: 1 + ((w + r) % 3) }, (_, i) => `w${w}-r${r}-${i}`);
          for (const t of tags) expected.add(t);
          const events = tags.map(tagged);
          const hold = new Promise<void>((resolve) => setTimeout(resolve, (w * 7 + r * 3) % 5));
          await openTransaction(writers, events, hold).committed;
        }
      }),
    );
    writing = false;
    await reader;

    const tags = seen.map(tagOf);
    expect(new Set(tags).size).toBe(tags.length);
    expect(new Set(tags)).toEqual(expected);
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]!.seq).toBeGreaterThan(seen[i - 1]!.seq);
    }
    // A transaction's events stay together and in order.
    for (let w = 0; w < WRITERS; w++) {
      const mine = tags.filter((t) => t.startsWith(`w${w}-r3-`));
      const at = tags.indexOf(mine[0]!);
      expect(tags.slice(at, at + mine.length)).toEqual(mine);
    }
  }, 60_000);

  it('migration 011 keeps an existing log: old events keep their seq, new ones come after', async () => {
    const name = `drover_evmig_${process.pid}`;
    const url = await createDatabase(TEST_POSTGRES_URL, name);
    const db = openPostgresDatabase(url, 2) as unknown as Kysely<unknown>;
    try {
      await sql`create table drover_migrations (id integer primary key, name text not null, applied_at bigint not null)`.execute(
        db,
      );
      const before = migrations.filter((m) => m.id < 11);
      for (const m of before) {
        await m.up(db, 'postgres');
        await sql`insert into drover_migrations values (${m.id}, ${m.name}, 0)`.execute(db);
      }
      await sql`insert into events (at, type, data)
        select g, 'job.updated', '{"old":' || g || '}' from generate_series(1, 5) g`.execute(db);
      await sql`delete from events where seq = 2`.execute(db);
      expect(await migrate(db, 'postgres')).toContain(11);

      const store = await openPostgresStore(url, { poolSize: 2 });
      try {
        const old = await store.listEvents({});
        expect(old.map((e) => [e.seq, e.data.old])).toEqual([
          [1, 1],
          [3, 3],
          [4, 4],
          [5, 5],
        ]);
        const added = await store.appendEvent(tagged('new'));
        expect(added.seq).toBe(6);
        expect((await store.listEvents({ after: 5 })).map(tagOf)).toEqual(['new']);
      } finally {
        await store.close();
      }
    } finally {
      await db.destroy();
      await dropDatabase(TEST_POSTGRES_URL, name);
    }
  });
});
