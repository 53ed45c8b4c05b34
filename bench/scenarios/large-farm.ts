import type { BenchConfig } from '../lib/config.js';
import type { RunningFarm } from '../lib/farm.js';
import { submitJob } from '../lib/manager.js';
import { note, percentile, type Row } from '../lib/report.js';

const SCENARIO = '7 large farm queries';

/**
 * Scenario 7: with 1,000,000 tasks stored (what scenario 4 submitted, topped up with jobs of
 * 100,000 frames), the latency of the job list (`GET /api/v1/jobs`, the default page of 100
 * newest jobs) and of one job's detail (`GET /api/v1/jobs/:id`, a random job), one request
 * at a time.
 */
export async function largeFarm(
  c: BenchConfig,
  farm: RunningFarm,
  tasksSoFar: number,
): Promise<Row[]> {
  const target = c.quick ? 100_000 : 1_000_000;
  const chunk = c.quick ? 10_000 : 100_000;
  for (let have = tasksSoFar; have < target; have += chunk) {
    await submitJob(farm.first, { name: 'filler', frames: `1-${Math.min(chunk, target - have)}` });
  }
  const list = await farm.first.admin.call<{ jobs: Array<{ id: string }> }>(
    'GET',
    '/api/v1/jobs?limit=1000',
  );
  const ids = list.jobs.map((j) => j.id);
  const requests = c.quick ? 50 : 500;
  const time = async (path: string) => {
    const t = performance.now();
    await farm.first.admin.call('GET', path);
    return performance.now() - t;
  };
  const listMs: number[] = [];
  const detailMs: number[] = [];
  for (let i = 0; i < requests; i++) {
    listMs.push(await time('/api/v1/jobs'));
    detailMs.push(await time(`/api/v1/jobs/${ids[Math.floor(Math.random() * ids.length)]}`));
  }
  const system = `Drover SQLite, ${target.toLocaleString('en-US')} tasks`;
  note(`${SCENARIO}: job list p99 ${percentile(listMs, 99).toFixed(1)} ms`);
  return [
    {
      scenario: SCENARIO,
      system,
      metric: 'job list p50',
      value: percentile(listMs, 50),
      unit: 'ms',
    },
    {
      scenario: SCENARIO,
      system,
      metric: 'job list p99',
      value: percentile(listMs, 99),
      unit: 'ms',
    },
    {
      scenario: SCENARIO,
      system,
      metric: 'job detail p50',
      value: percentile(detailMs, 50),
      unit: 'ms',
    },
    {
      scenario: SCENARIO,
      system,
      metric: 'job detail p99',
      value: percentile(detailMs, 99),
      unit: 'ms',
    },
  ];
}
