import type { BenchConfig } from '../lib/config.js';
import { benchStore, startFarm, type RunningFarm } from '../lib/farm.js';
import { submitJob } from '../lib/manager.js';
import { note, type Row } from '../lib/report.js';

const SCENARIO = '4 submission';

/** Runs on the SQLite farm after the submissions (scenario 7 builds on what was submitted). */
export type AfterSubmission = (
  c: BenchConfig,
  farm: RunningFarm,
  tasksSoFar: number,
) => Promise<Row[]>;

/**
 * Scenario 4: `POST /api/v1/jobs` of one job of 100,000 frames (one task each), then 1,000
 * jobs of 100 frames sent 8 at a time; time and task rows written per second.
 */
export async function submission(c: BenchConfig, after?: AfterSubmission): Promise<Row[]> {
  const rows: Row[] = [];
  const kinds: Array<'sqlite' | 'postgres'> = c.postgres ? ['sqlite', 'postgres'] : ['sqlite'];
  for (const kind of kinds) {
    const system = kind === 'sqlite' ? 'Drover SQLite' : 'Drover PostgreSQL';
    const store = await benchStore(c, kind, 'submit');
    try {
      const farm = await startFarm(c, store, 1);
      try {
        const frames = c.quick ? 10_000 : 100_000;
        let t = performance.now();
        await submitJob(farm.first, { name: 'one big job', frames: `1-${frames}` });
        let seconds = (performance.now() - t) / 1000;
        const big = `1 job of ${frames.toLocaleString('en-US')} frames`;
        rows.push(
          { scenario: SCENARIO, system, metric: `${big}: accepted in`, value: seconds, unit: 's' },
          {
            scenario: SCENARIO,
            system,
            metric: `${big}: tasks`,
            value: frames / seconds,
            unit: '/s',
          },
        );
        note(`${SCENARIO} ${system}: ${big} in ${seconds.toFixed(2)} s`);

        const jobs = c.quick ? 100 : 1000;
        let next = 0;
        t = performance.now();
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            while (next < jobs) {
              next++;
              await submitJob(farm.first, { name: `small ${next}`, frames: '1-100' });
            }
          }),
        );
        seconds = (performance.now() - t) / 1000;
        const small = `${jobs.toLocaleString('en-US')} jobs of 100 frames`;
        rows.push(
          {
            scenario: SCENARIO,
            system,
            metric: `${small}: accepted in`,
            value: seconds,
            unit: 's',
          },
          {
            scenario: SCENARIO,
            system,
            metric: `${small}: tasks`,
            value: (jobs * 100) / seconds,
            unit: '/s',
          },
        );
        note(`${SCENARIO} ${system}: ${small} in ${seconds.toFixed(2)} s`);
        if (after && kind === 'sqlite') rows.push(...(await after(c, farm, frames + jobs * 100)));
      } finally {
        await farm.stop();
      }
    } finally {
      await store.drop();
    }
  }
  return rows;
}
