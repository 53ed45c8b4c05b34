import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, sql, type LogEvent } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jobSubmissionSchema } from '../../core/job-spec.js';
import { parseFrameList } from '../../core/frames.js';
import { TestClock, register, submit } from '../conformance/harness.js';
import { TestDatabases, withPostgres } from '../conformance/postgres-databases.js';
import type { Dialect } from './dialect.js';
import { insertTasks } from './jobs.js';
import { migrate } from './migrate.js';
import type { Database } from './schema.js';
import { ABANDON_CREATION_AFTER_MS, reserveKey, startCreation } from './staging.js';
import { SqlStore } from './store.js';

/**
 * What the store's SQL does on a real database, beyond what the contract shows: the plan of
 * house keeping's lease-expiry query, and what a manager that dies mid-way through a large
 * submission leaves behind. Each test runs on SQLite and PostgreSQL; the queries are the
 * ones the store sends (captured from Kysely's log), not restatements of them.
 */

interface Opened {
  db: Kysely<Database>;
  store: SqlStore;
  queries: CompiledQuery[];
  clock: TestClock;
}

type Open = () => Promise<Opened>;

async function openOn(dialect: Dialect, db: (log: (e: LogEvent) => void) => Kysely<Database>) {
  const queries: CompiledQuery[] = [];
  const kysely = db((e) => {
    if (e.level === 'query') queries.push(e.query);
  });
  await migrate(kysely as unknown as Kysely<unknown>, dialect);
  const clock = new TestClock();
  const store = new SqlStore(kysely, dialect, { now: clock.now, leaseTtlMs: 10_000 });
  return { db: kysely, store, queries, clock };
}

/**
 * PostgreSQL reading a partial index that holds rendering tasks only: `tasks_rendering` (by
 * lease expiry) or, with statistics that show it tiny too, `tasks_by_worker`; an index scan
 * or a bitmap built from one. Either reads the rendering tasks, never every task.
 */
const INDEX_SCAN =
  /(Index Scan using|Index Only Scan using|Bitmap Index Scan on) (tasks_rendering|tasks_by_worker)/;

function suite(dialect: Dialect, open: Open): void {
  describe(`store SQL on ${dialect}: bounded work`, () => {
    let o: Opened;
    afterEach(async () => {
      await o.store.close();
    });

    /** The plan of `query` as the database would run it now, one line per step. */
    async function planOf(query: CompiledQuery): Promise<string[]> {
      if (dialect === 'sqlite') {
        const r = await o.db.executeQuery<{ detail: string }>(
          CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]),
        );
        return r.rows.map((row) => row.detail);
      }
      const r = await o.db.executeQuery<{ 'QUERY PLAN': string }>(
        CompiledQuery.raw(`explain ${query.sql}`, [...query.parameters]),
      );
      return r.rows.map((row) => row['QUERY PLAN']);
    }

    it("reads house keeping's lease-expiry query from its partial index, never the whole tasks table", async () => {
      o = await open();
      // Many tasks, a few rendering: what a farm with a large queue looks like.
      await submit(o.store, { frames: '1-20000', chunkSize: 1 });
      await submit(o.store, { frames: '1-20000', chunkSize: 1 });
      await register(o.store, 'w1', { slots: 4 });
      for (let i = 0; i < 4; i++) expect(await o.store.claimTask('w1')).toBeDefined();
      o.queries.length = 0;
      await o.store.expireLeases(60_000);
      const expiry = o.queries.filter(
        (q) => /^select/i.test(q.sql) && q.sql.includes('"lease_expires_at" <'),
      );
      expect(expiry).toHaveLength(1);
      const query = expiry[0]!;

      // Without statistics (a SQLite store is never analyzed; SQLite then walked the
      // primary key of every task to produce `ORDER BY job_id, idx`), and with them.
      for (const stats of ['none', 'analyzed']) {
        if (stats === 'analyzed') await sql`analyze`.execute(o.db);
        const plan = await planOf(query);
        if (dialect === 'sqlite') {
          // SQLite says SEARCH for an index lookup and SCAN for a walk of a whole table or index.
          expect(plan.join(' | '), stats).toMatch(/^SEARCH tasks USING INDEX tasks_rendering/);
          expect(
            plan.filter((step) => /^SCAN tasks\b/.test(step)),
            stats,
          ).toEqual([]);
          continue;
        }
        expect(plan.join('\n'), stats).toMatch(INDEX_SCAN);
        expect(plan.join('\n'), stats).not.toMatch(/Seq Scan on tasks|tasks_pk|tasks_by_state/);
        // With sequential scans priced out, still the partial index, not the primary key.
        const forced = await o.db.connection().execute(async (conn) => {
          await sql`set enable_seqscan = off`.execute(conn);
          try {
            const r = await conn.executeQuery<{ 'QUERY PLAN': string }>(
              CompiledQuery.raw(`explain ${query.sql}`, [...query.parameters]),
            );
            return r.rows.map((row) => row['QUERY PLAN']).join('\n');
          } finally {
            await sql`reset enable_seqscan`.execute(conn);
          }
        });
        expect(forced, stats).toMatch(INDEX_SCAN);
        expect(forced, stats).not.toMatch(/tasks_pk|tasks_by_state/);
      }
    });

    it('finds the deleted jobs due for purging from their partial index', async () => {
      o = await open();
      for (let i = 0; i < 50; i++) await submit(o.store, { frames: '1-2' });
      const gone = await submit(o.store, { frames: '1-2' });
      await o.store.applyJobAction(gone.id, 'delete');
      o.queries.length = 0;
      await o.store.purge({ deletedJobsAfterMs: 1000 });
      const due = o.queries.filter(
        (q) => /^select/i.test(q.sql) && q.sql.includes('"tasks_purged_at" is null'),
      );
      expect(due).toHaveLength(1);
      if (dialect === 'sqlite') {
        const plan = (await planOf(due[0]!)).join(' | ');
        expect(plan).toMatch(/jobs_deleted_unpurged/);
        return;
      }
      const forced = await o.db.connection().execute(async (conn) => {
        await sql`set enable_seqscan = off`.execute(conn);
        try {
          const r = await conn.executeQuery<{ 'QUERY PLAN': string }>(
            CompiledQuery.raw(`explain ${due[0]!.sql}`, [...due[0]!.parameters]),
          );
          return r.rows.map((row) => row['QUERY PLAN']).join('\n');
        } finally {
          await sql`reset enable_seqscan`.execute(conn);
        }
      });
      expect(forced).toMatch(/jobs_deleted_unpurged/);
    });

    it('leaves no job, nothing dispatchable, when a manager dies mid-way through a large submission; house keeping removes the tasks', async () => {
      o = await open();
      const sub = jobSubmissionSchema.parse({
        plugin: 'CommandLine',
        frames: '1-9000',
        chunkSize: 1,
      });
      const frames = parseFrameList(sub.frames);
      const id = '018bcfe5680000000000dead';
      const key = { owner: 'token-a', key: 'retry-me', bodyHash: 'h' };
      // What a manager that died after three batches leaves: a creation, its key, some tasks.
      await o.db.transaction().execute(async (trx) => {
        expect(await reserveKey(trx, o.clock.now(), 86_400_000, key, id)).toBeUndefined();
        await startCreation(trx, o.clock.now(), id);
      });
      await insertTasks(o.db, id, frames, 1, 0, 3000, 'queued');

      expect(await o.store.listJobs({ all: true })).toEqual([]);
      expect(await o.store.fetchJob(id)).toBeUndefined();
      await register(o.store, 'w1');
      expect(await o.store.claimTask('w1')).toBeUndefined();
      // Still in progress as far as anyone can tell: nothing is purged yet.
      expect(await o.store.purge({ deletedJobsAfterMs: 1000 })).toMatchObject({
        tasks: 0,
        creations: 0,
      });

      o.clock.advance(ABANDON_CREATION_AFTER_MS + 1);
      // A retry with the same key does not wait for the dead creation: it makes the job.
      const retried = await o.store.createJob(sub, frames, { idempotency: key });
      expect(retried.id).not.toBe(id);
      expect(retried.taskCount).toBe(9000);
      expect(retried.counts.queued).toBe(9000);

      const purged = await o.store.purge({ deletedJobsAfterMs: 1000 });
      expect(purged).toMatchObject({ tasks: 3000, creations: 1 });
      const left = await o.db
        .selectFrom('tasks')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('job_id', '=', id)
        .executeTakeFirstOrThrow();
      expect(Number(left.n)).toBe(0);
      expect((await o.store.listTasks(retried.id, { offset: 8999 })).length).toBe(1);
      // The retried job is what the key names now.
      expect((await o.store.createJob(sub, frames, { idempotency: key })).id).toBe(retried.id);
    });

    it('refuses to finish a creation that house keeping abandoned meanwhile, and creates nothing', async () => {
      o = await open();
      const creating = submit(o.store, { name: 'slow', frames: '1-300000', chunkSize: 1 });
      // Wait (bounded) until the creation is under way, then let it look dead to house keeping.
      const until = Date.now() + 20_000;
      while (Date.now() < until) {
        const row = await o.db.selectFrom('job_creations').select('job_id').executeTakeFirst();
        if (row) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      // Each round makes the creation's last touch older than the limit; a batch that
      // touches it between the clock's step and the purge keeps it alive one more round.
      let settled = false;
      void creating.catch(() => undefined).finally(() => (settled = true));
      for (let i = 0; i < 100 && !settled; i++) {
        o.clock.advance(ABANDON_CREATION_AFTER_MS + 1);
        await o.store.purge({ deletedJobsAfterMs: 1000, maxRows: 1 });
      }
      await expect(creating).rejects.toMatchObject({ code: 'unavailable' });
      expect(await o.store.listJobs({ all: true })).toEqual([]);
      for (let i = 0; i < 200; i++) {
        const step = await o.store.purge({ deletedJobsAfterMs: 1000, maxRows: 50_000 });
        if (step.creations > 0) break;
      }
      const left = await o.db
        .selectFrom('tasks')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(left.n)).toBe(0);
    }, 60_000);
  });
}

suite('sqlite', () =>
  openOn(
    'sqlite',
    (log) =>
      new Kysely<Database>({
        dialect: new SqliteDialect({
          database: new BetterSqlite3(join(mkdtempSync(join(tmpdir(), 'drover-bw-')), 'd.db')),
        }),
        log,
      }),
  ),
);

await withPostgres('store SQL on postgres: bounded work', () => {
  const dbs = new TestDatabases();
  beforeAll(() => dbs.prepareTemplate(), 60_000);
  afterAll(() => dbs.dropAll(), 60_000);
  suite('postgres', async () => {
    const url = await dbs.clone();
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    // As `openPostgresDatabase` does: a connection the server ends (the database dropped
    // after the test) must not become an unhandled error.
    pool.on('error', () => undefined);
    pool.on('connect', (client) => client.on('error', () => undefined));
    return openOn(
      'postgres',
      (log) => new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log }),
    );
  });
});
