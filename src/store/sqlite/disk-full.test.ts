import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { register, submit } from '../conformance/harness.js';
import { isDiskFull } from '../sql/disk-full.js';
import { migrate } from '../sql/migrate.js';
import type { Database } from '../sql/schema.js';
import { SqlStore } from '../sql/store.js';
import { openSqliteDatabase } from './index.js';

/**
 * A full disk, for real: `PRAGMA max_page_count` caps the database file at its current size,
 * so the next write that needs a new page fails with SQLITE_FULL exactly as a full disk does
 * (no tmpfs needed, and it works as root).
 */
describe('sqlite: a full disk', () => {
  let db: Kysely<Database>;
  let store: SqlStore;

  async function open(): Promise<void> {
    db = openSqliteDatabase(join(mkdtempSync(join(tmpdir(), 'drover-full-')), 'drover.db'));
    await migrate(db as unknown as Kysely<unknown>, 'sqlite');
    store = new SqlStore(db, 'sqlite');
  }
  const pages = async () =>
    Number((await sql<{ page_count: number }>`pragma page_count`.execute(db)).rows[0]!.page_count);
  const capAt = (n: number) => sql.raw(`pragma max_page_count = ${n}`).execute(db);

  afterEach(async () => {
    await store.close();
  });

  it('refuses writes with insufficient_storage, changes nothing, reports degraded health until a write succeeds', async () => {
    await open();
    await register(store, 'w1');
    const before = await submit(store, { name: 'before', frames: '1-10' });
    // A small page cache makes SQLite spill a transaction's pages to the file early; a spill
    // that finds the disk full rolls the whole transaction back.
    await sql`pragma cache_size = 16`.execute(db);
    await capAt(await pages());

    // A job of many tasks needs new pages: SQLite fails mid-transaction and rolls it back
    // itself (the ROLLBACK that follows used to fail and hide the cause).
    let refused: unknown;
    for (let i = 0; i < 50 && refused === undefined; i++) {
      await submit(store, { name: `big ${i}`, frames: '1-2000' }).catch((err: unknown) => {
        refused = err;
      });
    }
    expect(refused).toMatchObject({
      code: 'insufficient_storage',
      message: expect.stringContaining("the store's disk is full; nothing was changed"),
    });
    expect((refused as Error).message).not.toContain('cannot rollback');
    expect(isDiskFull((refused as Error).cause)).toBe(true);
    const jobsWhenFull = (await store.listJobs({})).map((j) => j.name);
    expect(jobsWhenFull).toContain('before');

    // The failed submission left nothing behind; reads still work.
    expect((await store.listJobs({})).map((j) => j.name)).toEqual(jobsWhenFull);
    expect((await store.fetchJob(before.id))?.taskCount).toBe(10);

    const degraded = await store.health();
    expect(degraded.ok).toBe(false);
    expect(degraded.degraded).toBe('disk_full');
    expect(degraded.detail).toMatch(/disk is full/);

    // Space is freed: the next write succeeds and health is ok again.
    await capAt(1_000_000);
    await store.heartbeat('w1', { tasks: [] });
    const healthy = await store.health();
    expect(healthy.ok).toBe(true);
    expect(healthy.degraded).toBeUndefined();
  });

  it('tells a full disk apart on single-statement writes too', async () => {
    await open();
    await capAt(await pages());
    let refused: unknown;
    for (let i = 0; i < 200 && refused === undefined; i++) {
      await store
        .savePluginSettings({ name: `p${i}`, state: 'global', config: { x: 'y'.repeat(4000) } })
        .catch((err: unknown) => {
          refused = err;
        });
    }
    expect(refused).toMatchObject({ code: 'insufficient_storage' });
    expect((await store.health()).degraded).toBe('disk_full');
  });

  it('reports SQLITE_FULL, not "cannot rollback", when SQLite rolled the transaction back itself', async () => {
    await open();
    await sql`create table filler (x text)`.execute(db);
    await sql`create index filler_x on filler (x)`.execute(db);
    await capAt(await pages());
    // An indexed insert that needs a page SQLite cannot have: SQLite ends the transaction
    // itself, and Kysely's ROLLBACK afterwards used to fail and replace the cause.
    const failure = await db
      .transaction()
      .execute(async (trx) => {
        for (let i = 0; i < 100_000; i++) {
          await sql`insert into filler (x) values (${'y'.repeat(100) + String(i)})`.execute(trx);
        }
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(failure).toMatchObject({ code: 'SQLITE_FULL' });
  });

  it('recognises PostgreSQL disk_full (SQLSTATE 53100)', () => {
    expect(isDiskFull({ code: '53100' })).toBe(true);
    expect(isDiskFull({ code: '53200' })).toBe(false);
    expect(isDiskFull(new Error('x'))).toBe(false);
  });
});
