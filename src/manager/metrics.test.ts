import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventPlugin } from '../events/plugin.js';
import type { Store } from '../store/contract.js';
import { TestDatabases, withPostgres } from '../store/conformance/postgres-databases.js';
import { openStore } from '../store/open.js';
import { startManager, type RunningManager } from './server.js';

/**
 * `GET /metrics`, scraped over real HTTP from a manager in this process, parsed as the
 * Prometheus text format: the series are there, and they move with the farm.
 */

type Samples = Map<string, number>;

/** Parses the exposition text into `name{labels}` → value (labels as printed). */
function parse(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A plugin whose `onJobStarted` waits until the test lets it go: its cursor lags meanwhile. */
function slowPlugin(): { plugin: EventPlugin; release(): void } {
  let release = () => undefined as void;
  const gate = new Promise<void>((r) => (release = r));
  return {
    plugin: {
      name: 'slow',
      description: 'waits',
      defaultState: 'global',
      config: [],
      handlers: { onJobStarted: () => gate },
    },
    release: () => release(),
  };
}

function metricsSuite(label: string, open: () => Promise<Store>): void {
  describe(`GET /metrics (${label})`, () => {
    let manager: RunningManager;
    let readToken: string;
    let workerToken: string;
    const slow = slowPlugin();

    beforeAll(async () => {
      const store = await open();
      manager = await startManager({
        dataDir: mkdtempSync(join(tmpdir(), 'drover-metrics-')),
        store,
        port: 0,
        logger: pino({ level: 'silent' }),
        plugins: [slow.plugin],
        settings: { houseKeepingIntervalMs: 50 },
      });
      readToken = (await manager.auth!.createToken('prometheus', 'read-only')).secret;
      workerToken = (await manager.auth!.createToken('w', 'worker', '*')).secret;
    }, 60_000);
    afterAll(async () => {
      slow.release();
      await manager?.close();
    });

    const call = async (method: string, path: string, token: string, body?: unknown) => {
      const res = await fetch(`${manager.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return res;
    };
    const scrape = async (): Promise<Samples> => {
      const res = await call('GET', '/metrics', readToken);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return parse(await res.text());
    };

    it('serves the Prometheus text format to a read token, not to a worker token', async () => {
      const refused = await call('GET', '/metrics', workerToken);
      expect(refused.status, await refused.clone().text()).toBe(403);
      expect((await fetch(`${manager.url}/metrics`)).status).toBe(401);
      const names = new Set([...(await scrape()).keys()].map((k) => k.replace(/\{.*$/, '')));
      for (const name of [
        'drover_claims_total',
        'drover_task_reports_total',
        'drover_claim_seconds_count',
        'drover_house_keeping_seconds_count',
        'drover_event_log_head',
        'drover_long_polls_waiting',
        'drover_claims_queued',
        'process_resident_memory_bytes',
        'nodejs_eventloop_lag_seconds',
      ]) {
        expect(names, name).toContain(name);
      }
      if (label === 'postgres') {
        for (const name of [
          'drover_store_pool_max',
          'drover_store_pool_connections',
          'drover_store_pool_acquire_seconds_count',
        ]) {
          expect(names, name).toContain(name);
        }
      }
    });

    it('counts a claim and a completion, and shows the queue, the workers and the lag', async () => {
      const before = await scrape();
      const registered = await call('POST', '/api/v1/workers/register', workerToken, {
        name: 'm1',
        region: 'eu',
        pools: ['fx'],
        capabilities: { cpus: 1, memoryMb: 1024, os: 'linux' },
      });
      expect(registered.status).toBe(200);
      await manager.farm.submitJob({
        name: 'counted',
        plugin: 'CommandLine',
        pluginInfo: { executable: '/bin/true' },
        frames: '1-3',
        pool: 'fx',
        regions: ['eu'],
      });
      // Gauges are read at scrape time (and reused for a second): wait for them to show it.
      await until('3 queued tasks in fx/eu', async () =>
        (await scrape()).get('drover_queued_tasks{pool="fx",region="eu"}') === 3 ? true : undefined,
      );
      await until('an idle worker in eu', async () =>
        (await scrape()).get('drover_workers{state="idle",region="eu"}') === 1 ? true : undefined,
      );

      const work = (body: unknown) =>
        call('POST', '/api/v1/workers/m1/work', workerToken, body).then(
          async (r) => (await r.json()) as { task: { lease: string } | null },
        );
      const first = await work({ waitMs: 0 });
      expect(first.task).not.toBeNull();
      const second = await work({ report: { lease: first.task!.lease, outcome: 'completed' } });
      expect(second.task).not.toBeNull();

      const after = await scrape();
      const moved = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
      expect(moved('drover_claims_total{result="task"}')).toBe(2);
      expect(moved('drover_task_reports_total{outcome="completed"}')).toBe(1);
      expect(moved('drover_claim_seconds_count')).toBe(2);

      // The slow plugin is stuck on job.started: events after it wait for it.
      const lag = await until('the slow plugin to lag', async () => {
        const v = (await scrape()).get('drover_event_log_lag_events{consumer="plugin:slow"}');
        return v !== undefined && v > 0 ? v : undefined;
      });
      expect(lag).toBeGreaterThan(0);
      slow.release();
      await until('the slow plugin to catch up', async () =>
        (await scrape()).get('drover_event_log_lag_events{consumer="plugin:slow"}') === 0
          ? true
          : undefined,
      );
      // House keeping ran (every 50 ms here) and was timed.
      await until('a timed house-keeping round', async () =>
        ((await scrape()).get('drover_house_keeping_seconds_count{part="purge"}') ?? 0) > 0
          ? true
          : undefined,
      );
    });
  });
}

metricsSuite('sqlite', () =>
  openStore(join(mkdtempSync(join(tmpdir(), 'drover-metrics-db-')), 'drover.db')),
);

await withPostgres('metrics: postgres', () => {
  const dbs = new TestDatabases();
  beforeAll(() => dbs.prepareTemplate(), 60_000);
  afterAll(() => dbs.dropAll());
  metricsSuite('postgres', async () => openStore(await dbs.clone()));
});
