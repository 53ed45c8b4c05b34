import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { versionConformance } from './conformance/versions.js';
import { TestDatabases, withPostgres } from './conformance/postgres-databases.js';
import { openPostgresStore } from './postgres/index.js';
import { openSqliteStore } from './sqlite/index.js';

// A real SQLite file (one manager's store: several managers share a farm on PostgreSQL only,
// so the concurrent allocations all go through the one store) and real PostgreSQL (several
// pools on one database: several managers).
versionConformance('sqlite', async () => [
  await openSqliteStore(join(mkdtempSync(join(tmpdir(), 'drover-versions-')), 'drover.db')),
]);

await withPostgres('store conformance: postgres: versions', () => {
  const dbs = new TestDatabases();
  beforeAll(() => dbs.prepareTemplate(), 60_000);
  afterAll(() => dbs.dropAll(), 60_000);
  versionConformance('postgres', async (n) => {
    const url = await dbs.clone();
    return Promise.all(Array.from({ length: n }, () => openPostgresStore(url, { poolSize: 4 })));
  });
});
