import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeConformance } from '../conformance/suite.js';
import { openSqliteStore } from './index.js';

// A real SQLite file per test, in WAL mode, as the manager uses it.
storeConformance('sqlite', (options) =>
  openSqliteStore(join(mkdtempSync(join(tmpdir(), 'drover-store-')), 'drover.db'), options),
);
