import { defaultManagerSettings } from '../../src/manager/config.js';
import type { BenchConfig } from '../lib/config.js';
import { benchStore, startFarm } from '../lib/farm.js';
import { submitJob } from '../lib/manager.js';
import { ProcessSampler } from '../lib/proc.js';
import { note, percentile, type Row } from '../lib/report.js';
import { runSwarm } from '../lib/swarm-control.js';

const SCENARIO = '5 many workers';

/**
 * Scenario 5: 10,000 simulated workers registered on one manager process (SQLite), each
 * heartbeating at the production interval (5 s) and rendering tasks of 20–40 s (≈330 task
 * cycles/s farm-wide), so dispatch runs beside the heartbeats. The manager's CPU (% of one
 * core) and peak RSS come from /proc/<pid>/stat and /proc/<pid>/status over the window.
 */
export async function manyWorkers(c: BenchConfig): Promise<Row[]> {
  const workers = c.quick ? 1000 : 10_000;
  const heartbeatMs = defaultManagerSettings.heartbeatIntervalMs;
  // The warm-up covers the first claims (all workers at once) and one heartbeat round.
  const warmupMs = c.quick ? 6000 : 15_000;
  const measureMs = c.quick ? 5000 : 30_000;
  const store = await benchStore(c, 'sqlite', 'many');
  try {
    const farm = await startFarm(c, store, 1);
    try {
      await submitJob(farm.first, { name: 'long renders', frames: `1-${workers * 4}` });
      let sampler: ProcessSampler | undefined;
      const timer = setTimeout(() => (sampler = new ProcessSampler(farm.first.pid)), warmupMs);
      const result = await runSwarm(
        {
          mode: 'farm',
          urls: [farm.first.url],
          token: farm.token,
          prefix: 'node',
          workers,
          warmupMs,
          measureMs,
          waitMs: 20_000,
          heartbeatMs,
          renderMs: [20_000, 40_000],
        },
        c.swarmProcesses,
      );
      clearTimeout(timer);
      const usage = sampler?.stop() ?? { cpuPercent: Number.NaN, rssMb: Number.NaN };
      if (result.errors > 0)
        note(`${SCENARIO}: ${result.errors} errors, first: ${result.firstError}`);
      const system = `Drover SQLite, ${workers.toLocaleString('en-US')} workers`;
      const at = { scenario: SCENARIO, system };
      note(`${SCENARIO}: CPU ${usage.cpuPercent.toFixed(0)}%, RSS ${usage.rssMb.toFixed(0)} MB`);
      return [
        { ...at, metric: 'manager CPU', value: usage.cpuPercent, unit: '% of a core' },
        { ...at, metric: 'manager RSS (peak)', value: usage.rssMb, unit: 'MB' },
        {
          ...at,
          metric: 'heartbeats',
          value: result.heartbeatLatencies.length / (measureMs / 1000),
          unit: '/s',
        },
        {
          ...at,
          metric: 'heartbeat latency p99',
          value: percentile(result.heartbeatLatencies, 99),
          unit: 'ms',
        },
        { ...at, metric: 'task cycles', value: result.cycles / (measureMs / 1000), unit: '/s' },
        ...(result.errors > 0 ? [{ ...at, metric: 'errors', value: result.errors, unit: '' }] : []),
      ];
    } finally {
      await farm.stop();
    }
  } finally {
    await store.drop();
  }
}
