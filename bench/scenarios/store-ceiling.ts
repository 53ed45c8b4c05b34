import { join } from 'node:path';
import { prepareSubmission } from '../../src/core/submission.js';
import type { Store } from '../../src/store/contract.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { windowMs, type BenchConfig } from '../lib/config.js';
import { benchJob } from '../lib/manager.js';
import { query, scratchDatabase } from '../lib/postgres.js';
import { note, type Row } from '../lib/report.js';

const SCENARIO = '1 store ceiling';

/**
 * Scenario 1: claims + completions per second calling the store directly in one process —
 * `store.work(worker, report, true)` back to back, one loop per connection, one big job.
 * The ceiling HTTP dispatch is compared with.
 */
export async function storeCeiling(c: BenchConfig): Promise<Row[]> {
  const rows: Row[] = [];
  const sqlite = await openSqliteStore(join(c.tmp, 'ceiling.db'));
  rows.push(await measure(c, sqlite, 'SQLite', 1, c.quick ? 20_000 : 200_000));
  await sqlite.close();
  if (c.postgres) {
    for (const connections of [1, 16]) {
      const db = await scratchDatabase('ceiling');
      try {
        const store = await openPostgresStore(db.url, { poolSize: connections });
        rows.push(
          await measure(
            c,
            store,
            `PostgreSQL ${connections} conn`,
            connections,
            c.quick ? 5000 : 80_000,
            db.url,
          ),
        );
        await store.close();
      } finally {
        await db.drop();
      }
    }
  }
  return rows;
}

async function measure(
  c: BenchConfig,
  store: Store,
  system: string,
  loops: number,
  tasks: number,
  pgUrl?: string,
): Promise<Row> {
  const { submission, frames } = prepareSubmission(benchJob({ frames: `1-${tasks}` }));
  await store.createJob(submission, frames);
  // After a bulk submission PostgreSQL needs statistics (DESIGN.md: 5–10× slower without).
  if (pgUrl) await query(pgUrl, 'analyze');
  const names = Array.from({ length: loops }, (_, i) => `ceiling-${i}`);
  for (const name of names) {
    await store.registerWorker({
      name,
      region: 'bench',
      pools: [],
      groups: [],
      slots: 1,
      capabilities: { cpus: 1, memoryMb: 1024, os: 'linux', gpus: 0 },
      version: '',
    });
  }
  const { warmupMs, measureMs } = windowMs(c);
  const start = performance.now();
  const from = start + warmupMs;
  const until = from + measureMs;
  let cycles = 0;
  let drainedAt: number | undefined;
  await Promise.all(
    names.map(async (name) => {
      let lease: string | undefined;
      while (performance.now() < until && drainedAt === undefined) {
        const r = await store.work(
          name,
          lease ? { lease, outcome: 'completed', exitCode: 0, message: '' } : undefined,
          true,
        );
        const t = performance.now();
        if (lease && t >= from && t < until) cycles++;
        lease = r.task?.lease;
        if (!r.task) drainedAt = t;
      }
    }),
  );
  const seconds = (Math.min(drainedAt ?? until, until) - from) / 1000;
  if (drainedAt !== undefined) note(`${system}: the job drained before the window ended`);
  const value = cycles / seconds;
  note(`${SCENARIO} ${system}: ${value.toFixed(0)} cycles/s`);
  return { scenario: SCENARIO, system, metric: 'task cycles', value, unit: '/s' };
}
