import { Agent, request } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestDatabases, withPostgres } from '../store/conformance/postgres-databases.js';
import { openPostgresStore, postgresPool } from '../store/postgres/index.js';
import { startManager, type RunningManager } from './server.js';

/**
 * Connections are for queries, not for waiting: a manager with a pool of 16 PostgreSQL
 * connections serves 200 workers long-polling at once over real HTTP (each on its own
 * keep-alive connection, as real workers are), with no error and with the pool's queue of
 * waiting callers bounded by the pool, not by the number of workers.
 */

const WORKERS = 200;
const POOL = 16;
const TASKS = WORKERS * 3;

interface Reply {
  status: number;
  body: { task?: { lease: string } | null; reportError?: unknown };
}

/** One worker's connection: its own agent with one socket, kept alive. */
function connection(base: URL) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const call = (path: string, body: unknown): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const payload = JSON.stringify(body);
      const req = request(
        {
          host: base.hostname,
          port: base.port,
          method: 'POST',
          path,
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Reply['body'] }),
          );
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  return { call, close: () => agent.destroy() };
}

async function until(what: string, condition: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

await withPostgres('long-polls on a pool of 16', () => {
  const dbs = new TestDatabases();
  let manager: RunningManager;
  beforeAll(async () => {
    await dbs.prepareTemplate();
    const store = await openPostgresStore(await dbs.clone(), { poolSize: POOL });
    manager = await startManager({
      dataDir: mkdtempSync(join(tmpdir(), 'drover-long-poll-')),
      store,
      port: 0,
      auth: false,
      logger: pino({ level: 'silent' }),
    });
  }, 60_000);
  afterAll(async () => {
    await manager?.close();
    await dbs.dropAll();
  });

  it(`serves ${WORKERS} long-polling workers with no error and a bounded pool queue`, async () => {
    const base = new URL(manager.url);
    const store = manager.farm.store;
    const pool = postgresPool(store)!;
    expect(pool.max).toBe(POOL);
    let maxWaiting = 0;
    const sample = () => (maxWaiting = Math.max(maxWaiting, pool.waiting));
    const stopWatch = pool.onAcquire(sample);
    const sampler = setInterval(sample, 5);

    const names = Array.from({ length: WORKERS }, (_, i) => `lp-${i}`);
    const conns = names.map(() => connection(base));
    const statuses = new Map<number, number>();
    const count = (r: Reply) => statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    try {
      // Each worker registers on its own connection, 20 at a time.
      for (let i = 0; i < WORKERS; i += 20) {
        await Promise.all(
          names.slice(i, i + 20).map(async (name, j) =>
            count(
              await conns[i + j]!.call('/api/v1/workers/register', {
                name,
                region: 'r',
                capabilities: { cpus: 1, memoryMb: 1024, os: 'linux' },
              }),
            ),
          ),
        );
      }

      // Every worker long-polls an empty queue, then claims and completes until it drains.
      let completed = 0;
      let submitted = false;
      const loops = names.map(async (name, i) => {
        let lease: string | undefined;
        for (;;) {
          const r = await conns[i]!.call(`/api/v1/workers/${name}/work`, {
            ...(lease ? { report: { lease, outcome: 'completed' } } : {}),
            // As real workers do (20 s); once busy, a short wait ends the loop when drained.
            waitMs: lease ? 500 : 20_000,
          });
          count(r);
          if (r.status !== 200) return;
          if (lease && r.body.reportError === null) completed++;
          lease = r.body.task?.lease;
          if (!lease && submitted) return;
        }
      });
      // All of them wait at once, holding no connection: the pool is idle meanwhile.
      await until('every worker to long-poll', () => manager.farm.signal.waiting === WORKERS);
      await until('the pool to go idle', () => pool.idle === pool.total && pool.waiting === 0);

      // Work appears: every waiting claim wakes at once.
      submitted = true;
      await manager.farm.submitJob({
        name: 'wake everyone',
        plugin: 'CommandLine',
        pluginInfo: { executable: '/bin/true' },
        frames: `1-${TASKS}`,
      });
      await Promise.all(loops);

      // No 503 (or anything else) while 200 claims wait for a turn at 16 connections.
      expect([...statuses.keys()]).toEqual([200]);
      expect(completed).toBe(TASKS);
      // Bounded by the pool's size, not by the 200 workers that woke at once.
      expect(maxWaiting).toBeLessThanOrEqual(POOL);
    } finally {
      clearInterval(sampler);
      stopWatch();
      for (const c of conns) c.close();
    }
  }, 120_000);
});
