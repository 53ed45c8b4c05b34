import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kysely } from 'kysely';
import { storeConformance } from '../conformance/suite.js';
import { register, submit, TestClock } from '../conformance/harness.js';
import { migrationStatus } from '../db-admin.js';
import { openStore } from '../open.js';
import { SqlStore } from '../sql/store.js';
import { openPostgresDatabase, openPostgresStore } from './index.js';
import { TestDatabases, withPostgres } from '../conformance/postgres-databases.js';

// The shared conformance suite against real PostgreSQL: one migrated template per file,
// one clone per test. Skipped (with a line saying why) when no server answers.
await withPostgres('store conformance: postgres', () => {
  const dbs = new TestDatabases();
  beforeAll(() => dbs.prepareTemplate(), 60_000);
  afterAll(() => dbs.dropAll(), 60_000);

  storeConformance('postgres', async (options) =>
    openPostgresStore(await dbs.clone(), { ...options, poolSize: 4 }),
  );

  describe('postgres: connections', () => {
    it('opens by URL, and reports every migration applied', async () => {
      const url = await dbs.clone();
      const store = await openStore(url);
      try {
        expect(store.kind).toBe('postgres');
        const status = await migrationStatus(url);
        expect(status).toMatchObject({ backend: 'postgres', pending: 0 });
      } finally {
        await store.close();
      }
    });

    it('recovers when the server drops every connection, and keeps listening', async () => {
      const url = await dbs.clone();
      const clock = new TestClock();
      const store = await openPostgresStore(url, { now: clock.now, poolSize: 4 });
      try {
        await register(store, 'w1');
        const heard: string[] = [];
        store.onNotify((c) => heard.push(c));
        const hear = async (channel: string) => {
          for (let i = 0; i < 250 && !heard.includes(channel); i++) {
            await store.notify(channel);
            await new Promise((r) => setTimeout(r, 20));
          }
          expect(heard).toContain(channel);
        };
        await hear('before');
        await submit(store, { frames: '1-3' });

        expect(await dbs.terminateConnections(url)).toBeGreaterThan(0);

        // The pool replaces dead connections; a transaction that failed before COMMIT on a
        // dead one is run again once.
        const job = await submit(store, { frames: '1-2' });
        expect(job.counts.queued).toBe(2);
        expect((await store.claimTask('w1'))?.jobId).toBeDefined();
        expect((await store.health()).ok).toBe(true);
        // The listening connection comes back by itself.
        await hear('after');
      } finally {
        await store.close();
      }
    });

    it('says a server that does not answer is unhealthy', async () => {
      const db = openPostgresDatabase('postgres://postgres@127.0.0.1:1/nothing', 1);
      const store = new SqlStore(db, 'postgres');
      try {
        const health = await store.health();
        expect(health.ok).toBe(false);
        expect(health.detail).toMatch(/^postgres: /);
      } finally {
        await store.close();
      }
    });

    it('lets several managers migrate one database at once', async () => {
      const url = await dbs.clone();
      // A clone is migrated already; the advisory lock must make concurrent runs no-ops.
      const stores = await Promise.all([1, 2, 3].map(() => openStore(url, { poolSize: 2 })));
      await Promise.all(stores.map((s) => s.close()));
      const db = openPostgresDatabase(url, 1);
      await db.destroy();
      expect(db).toBeInstanceOf(Kysely);
    });
  });
});
