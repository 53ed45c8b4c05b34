import { join } from 'node:path';
import { prepareSubmission } from '../../src/core/submission.js';
import type { Store } from '../../src/store/contract.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { windowMs, type BenchConfig } from '../lib/config.js';
import { benchJob } from '../lib/manager.js';
import {
  lockBreakdown,
  query,
  scratchDatabase,
  waitSampler,
  type WaitSamples,
} from '../lib/postgres.js';
import {
  rawPostgresLoops,
  rawSqliteLoop,
  type RawResult,
  type Window,
} from '../lib/raw-ceiling.js';
import { note, type Row } from '../lib/report.js';

const SCENARIO = '1 store ceiling';

/**
 * Scenario 1: claims + completions per second calling the store directly in one process —
 * `store.work(worker, report, true)` back to back, one loop per connection, one big job.
 * The ceiling HTTP dispatch is compared with. Beside each figure, in the same run, the raw
 * SQL ceiling of that dialect and connection count (`lib/raw-ceiling.ts`): a minimal
 * claim+complete loop in plain SQL on Drover's schema, and Drover's figure as a share of it.
 */
export async function storeCeiling(c: BenchConfig): Promise<Row[]> {
  const rows: Row[] = [];
  const sqliteTasks = c.quick ? 20_000 : 200_000;
  // The raw loop is several times faster: more tasks, so it does not drain in the window.
  const rawSqliteTasks = c.quick ? 40_000 : 400_000;
  const rawSqlite = await measureRawSqlite(c, join(c.tmp, 'ceiling-raw.db'), rawSqliteTasks);
  const sqlite = await openSqliteStore(join(c.tmp, 'ceiling.db'));
  const drover = await measure(c, sqlite, 'SQLite', 1, sqliteTasks);
  await sqlite.close();
  rows.push(drover, rawSqlite, share(drover, rawSqlite));
  if (c.postgres) {
    const [drover1, ...waits1] = await measurePostgres(c, 1, c.quick ? 5000 : 80_000);
    const raw1 = await measureRawPostgres(c, 1, c.quick ? 10_000 : 80_000);
    const [drover16, ...waits16] = await measurePostgres(c, 16, c.quick ? 5000 : 80_000);
    const raw16 = await measureRawPostgres(c, 16, c.quick ? 20_000 : 160_000);
    rows.push(drover1!, raw1, share(drover1!, raw1), ...waits1);
    rows.push(drover16!, raw16, share(drover16!, raw16), ...waits16);
    rows.push({
      scenario: SCENARIO,
      system: drover16!.system,
      metric: `÷ ${drover1!.system}`,
      value: drover16!.value / drover1!.value,
      unit: '×',
    });
  }
  return rows;
}

/** Drover's figure over the raw SQL figure of the same dialect and connections. */
function share(drover: Row, raw: Row): Row {
  return {
    scenario: SCENARIO,
    system: drover.system,
    metric: 'share of raw SQL',
    value: (100 * drover.value) / raw.value,
    unit: '%',
  };
}

/** Drover's figure, then what its connections waited for (`waitRows`). */
async function measurePostgres(c: BenchConfig, connections: number, tasks: number): Promise<Row[]> {
  const db = await scratchDatabase('ceiling');
  try {
    const store = await openPostgresStore(db.url, { poolSize: connections });
    try {
      const system = `PostgreSQL ${connections} conn`;
      const waits: Row[] = [];
      const drover = await measure(c, store, system, connections, tasks, db.url, waits);
      return [drover, ...waits];
    } finally {
      await store.close();
    }
  } finally {
    await db.drop();
  }
}

/** A job of `tasks` zero-work tasks created by Drover's store; returns its id. */
async function benchJobIn(store: Store, tasks: number): Promise<string> {
  const { submission, frames } = prepareSubmission(benchJob({ frames: `1-${tasks}` }));
  return (await store.createJob(submission, frames)).id;
}

function window(c: BenchConfig): Window {
  const { warmupMs, measureMs } = windowMs(c);
  const from = performance.now() + warmupMs;
  return { from, until: from + measureMs };
}

function rawRow(system: string, w: Window, r: RawResult): Row {
  const seconds = (Math.min(r.drainedAt ?? w.until, w.until) - w.from) / 1000;
  if (r.drainedAt !== undefined) note(`${system}: the job drained before the window ended`);
  const value = r.cycles / seconds;
  note(`${SCENARIO} ${system}: ${value.toFixed(0)} cycles/s`);
  return { scenario: SCENARIO, system, metric: 'task cycles', value, unit: '/s' };
}

async function measureRawSqlite(c: BenchConfig, file: string, tasks: number): Promise<Row> {
  const store = await openSqliteStore(file);
  const jobId = await benchJobIn(store, tasks);
  await store.close();
  const w = window(c);
  return rawRow('SQLite raw SQL', w, rawSqliteLoop(file, jobId, w));
}

async function measureRawPostgres(
  c: BenchConfig,
  connections: number,
  tasks: number,
): Promise<Row> {
  const db = await scratchDatabase('raw');
  try {
    const store = await openPostgresStore(db.url, { poolSize: 1 });
    const jobId = await benchJobIn(store, tasks);
    await store.close();
    await query(db.url, 'analyze');
    const w = window(c);
    const r = await rawPostgresLoops(db.url, jobId, connections, w);
    return rawRow(`PostgreSQL ${connections} conn raw SQL`, w, r);
  } finally {
    await db.drop();
  }
}

async function measure(
  c: BenchConfig,
  store: Store,
  system: string,
  loops: number,
  tasks: number,
  pgUrl?: string,
  waits?: Row[],
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
  // PostgreSQL: what the store's connections wait for during the window.
  const sampling =
    pgUrl && waits
      ? (async () => {
          await new Promise((r) => setTimeout(r, Math.max(0, from - performance.now())));
          const sampler = await waitSampler(pgUrl);
          await new Promise((r) => setTimeout(r, Math.max(0, until - performance.now())));
          return sampler.stop();
        })()
      : undefined;
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
  if (sampling) waits!.push(...waitRows(system, await sampling));
  const seconds = (Math.min(drainedAt ?? until, until) - from) / 1000;
  if (drainedAt !== undefined) note(`${system}: the job drained before the window ended`);
  const value = cycles / seconds;
  note(`${SCENARIO} ${system}: ${value.toFixed(0)} cycles/s`);
  return { scenario: SCENARIO, system, metric: 'task cycles', value, unit: '/s' };
}

/**
 * Of the samples of the store's connections running a statement in the window, the share
 * waiting for a row or transaction lock (claims queueing behind one another) and for the WAL
 * flush of a COMMIT.
 */
function waitRows(system: string, w: WaitSamples): Row[] {
  const pct = (n: number) => (w.active === 0 ? 0 : (100 * n) / w.active);
  note(
    `${SCENARIO} ${system}: ${w.active} active samples, ${w.lock} on a lock (${lockBreakdown(w)}), ${w.wal} on WAL`,
  );
  return [
    {
      scenario: SCENARIO,
      system,
      metric: 'active connections on a lock',
      value: pct(w.lock),
      unit: '%',
    },
    {
      scenario: SCENARIO,
      system,
      metric: 'active connections on WAL',
      value: pct(w.wal),
      unit: '%',
    },
  ];
}
