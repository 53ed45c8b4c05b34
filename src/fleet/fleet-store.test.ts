import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { fleetConformance } from '../store/conformance/fleets.js';
import { TestDatabases, withPostgres } from '../store/conformance/postgres-databases.js';
import { openPostgresStore } from '../store/postgres/index.js';
import { openSqliteStore } from '../store/sqlite/index.js';

// The fleets family's conformance on a real SQLite file and on real PostgreSQL.
fleetConformance('sqlite', (options) =>
  openSqliteStore(join(mkdtempSync(join(tmpdir(), 'drover-fleets-')), 'drover.db'), options),
);

await withPostgres('fleet conformance: postgres', () => {
  const dbs = new TestDatabases();
  beforeAll(() => dbs.prepareTemplate(), 60_000);
  afterAll(() => dbs.dropAll(), 60_000);
  fleetConformance('postgres', async (options) =>
    openPostgresStore(await dbs.clone(), { ...options, poolSize: 4 }),
  );
});
