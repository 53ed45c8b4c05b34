import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import pg from 'pg';
import { windowMs, type BenchConfig } from '../lib/config.js';
import { query, scratchDatabase } from '../lib/postgres.js';
import { note, type Row } from '../lib/report.js';

const SCENARIO = '3 peers';
/** As many consumers as scenario 2's smaller run has workers. */
const CONSUMERS = 100;
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Scenario 3: the same workload on the peers in the same run — zero-work jobs, 100
 * consumers, one queue, jobs per second completed over the same window as scenario 2 — and
 * Drover's ratio to each (Drover's rate with 100 workers from scenario 2, passed in `rates`).
 */
export async function peers(c: BenchConfig, rates: ReadonlyMap<string, number>): Promise<Row[]> {
  const rows: Row[] = [];
  const peerRates = new Map<string, number>();
  const bull = await tryPeer('BullMQ', () => bullmq(c));
  if (bull !== undefined) peerRates.set('BullMQ', bull);
  if (c.postgres) {
    const gw = await tryPeer('graphile-worker', () => graphileWorker(c));
    if (gw !== undefined) peerRates.set('graphile-worker', gw);
  }
  for (const [peer, rate] of peerRates) {
    rows.push({
      scenario: SCENARIO,
      system: `${peer}, ${CONSUMERS} consumers`,
      metric: 'jobs',
      value: rate,
      unit: '/s',
    });
  }
  for (const [system, drover] of rates) {
    if (!system.endsWith(`, ${CONSUMERS} workers`)) continue;
    for (const [peer, rate] of peerRates) {
      rows.push({
        scenario: SCENARIO,
        system,
        metric: `Drover ÷ ${peer}`,
        value: drover / rate,
        unit: '×',
      });
    }
  }
  return rows;
}

async function tryPeer(name: string, fn: () => Promise<number>): Promise<number | undefined> {
  try {
    const rate = await fn();
    note(`${SCENARIO} ${name}: ${rate.toFixed(0)} jobs/s`);
    return rate;
  } catch (err) {
    note(`${SCENARIO} ${name} left out: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

/** Counts completions inside the window after `start()`; resolves with jobs per second. */
async function windowed(
  c: BenchConfig,
  start: (onDone: () => void) => Promise<() => Promise<void>>,
): Promise<number> {
  const { warmupMs, measureMs } = windowMs(c);
  let from = Number.POSITIVE_INFINITY;
  let until = Number.POSITIVE_INFINITY;
  let done = 0;
  let last = 0;
  const stop = await start(() => {
    const t = performance.now();
    if (t >= from && t < until) {
      done++;
      last = t;
    }
  });
  from = performance.now() + warmupMs;
  until = from + measureMs;
  await new Promise((r) => setTimeout(r, warmupMs + measureMs));
  await stop();
  // A queue that ran dry inside the window counts up to its last completion.
  const end = until - last > 500 ? last : until;
  if (end !== until)
    note(`${SCENARIO}: the queue ran dry ${((until - last) / 1000).toFixed(1)} s early`);
  return done / (Math.max(end - from, 1) / 1000);
}

/**
 * BullMQ on the local Redis, as its guide advises for throughput: one `Worker` with
 * `concurrency` (here 100) for I/O-bound processors, jobs added with `addBulk`, and
 * `removeOnComplete` / `removeOnFail` so Redis does not keep every finished job.
 */
async function bullmq(c: BenchConfig): Promise<number> {
  const url = new URL(REDIS_URL);
  const connection = {
    host: url.hostname,
    port: Number(url.port || 6379),
    maxRetriesPerRequest: null,
  };
  const name = `drover-bench-${randomBytes(3).toString('hex')}`;
  const queue = new Queue(name, {
    connection,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
  });
  try {
    const jobs = c.quick ? 40_000 : 400_000;
    for (let i = 0; i < jobs; i += 1000) {
      await queue.addBulk(
        Array.from({ length: Math.min(1000, jobs - i) }, () => ({ name: 'task', data: {} })),
      );
    }
    return await windowed(c, (onDone) => {
      const worker = new Worker(name, () => Promise.resolve(), {
        connection,
        concurrency: CONSUMERS,
      });
      worker.on('completed', onDone);
      return Promise.resolve(() => worker.close(true));
    });
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

/**
 * graphile-worker on the local PostgreSQL, as its performance page advises: `concurrency`
 * (100), a local queue (`preset.worker.localQueue.size` 500: jobs fetched and locked in
 * batches), batched completion (`preset.worker.completeJobBatchDelay` 0), jobs added in
 * bulk (`addJobs`), and `ANALYZE` after the bulk insert.
 */
async function graphileWorker(c: BenchConfig): Promise<number> {
  const db = await scratchDatabase('graphile');
  const logger = new Logger(() => () => undefined);
  try {
    const utils = await makeWorkerUtils({ connectionString: db.url, logger });
    try {
      await utils.migrate();
      const jobs = c.quick ? 40_000 : 400_000;
      for (let i = 0; i < jobs; i += 1000) {
        await utils.addJobs(
          Array.from({ length: Math.min(1000, jobs - i) }, () => ({
            identifier: 'task',
            payload: {},
          })),
        );
      }
    } finally {
      await utils.release();
    }
    await query(db.url, 'analyze');
    // Our own pool, ended before the database is dropped: graphile-worker's own pool could
    // still hold idle connections then, and their termination would be an unhandled error.
    const pool = new pg.Pool({ connectionString: db.url, max: CONSUMERS + 2 });
    pool.on('error', () => undefined);
    pool.on('connect', (client) => client.on('error', () => undefined));
    try {
      return await windowed(c, async (onDone) => {
        const runner = await run({
          pgPool: pool,
          concurrency: CONSUMERS,
          noHandleSignals: true,
          logger,
          taskList: { task: () => Promise.resolve() },
          preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0 } },
        });
        runner.events.on('job:success', onDone);
        return () => runner.stop();
      });
    } finally {
      await pool.end();
    }
  } finally {
    await db.drop();
  }
}
