import { writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { postgresUnavailable } from '../../src/store/conformance/postgres-databases.js';
import { runChaos, type ChaosOptions } from '../chaos/chaos.js';

/**
 * The chaos run (test/chaos/chaos.ts says what is measured and what "exactly once" means).
 * In CI (`npm test`): a bounded run per backend — 200 tasks, 4 workers, 2 worker kills,
 * 2 manager restarts (+ 1 PostgreSQL restart). `npm run chaos` runs the full size
 * (CHAOS_FULL=1: 500 tasks, 4 workers, 6 worker kills, 2 manager restarts, 1 PostgreSQL
 * restart) and prints each backend's figures as one JSON line (also written to the file
 * named by CHAOS_JSON, if set). It restarts PostgreSQL, so it runs with the serial tests.
 */

const full = process.env.CHAOS_FULL === '1';
const size: Omit<ChaosOptions, 'backend'> = full
  ? {
      tasks: 500,
      workers: 4,
      workerKills: 6,
      managerRestarts: 2,
      postgresRestarts: 1,
      timeoutMs: 240_000,
    }
  : {
      tasks: 200,
      workers: 4,
      workerKills: 2,
      managerRestarts: 2,
      postgresRestarts: 1,
      timeoutMs: 80_000,
    };

let skipPostgres: string | undefined;
const results: unknown[] = [];

beforeAll(async () => {
  skipPostgres = await postgresUnavailable();
  if (skipPostgres && process.env.DROVER_REQUIRE_POSTGRES === '1') throw new Error(skipPostgres);
  if (skipPostgres) console.warn(`skipping the PostgreSQL chaos run: ${skipPostgres}`);
});

async function chaos(backend: ChaosOptions['backend']): Promise<void> {
  const result = await runChaos({ backend, ...size, log: full ? console.log : undefined });
  console.log(JSON.stringify(result));
  results.push(result);
  if (process.env.CHAOS_JSON)
    writeFileSync(process.env.CHAOS_JSON, JSON.stringify(results, null, 2));
  expect({
    duplicates: result.duplicates,
    lost: result.lost,
    stuck: result.stuck,
    completedOnce: result.completedOnce,
  }).toEqual({ duplicates: 0, lost: 0, stuck: 0, completedOnce: size.tasks });
  expect(result.runs).toBeGreaterThanOrEqual(size.tasks);
  expect(result.faults.workerKills).toBe(size.workerKills);
  expect(result.faults.managerRestarts).toBe(size.managerRestarts);
}

describe('chaos: killed workers, killed managers, nothing lost or doubled', () => {
  it('on SQLite', async () => {
    await chaos('sqlite');
  }, 300_000);

  it('on PostgreSQL, with a PostgreSQL restart', async (ctx) => {
    if (skipPostgres) return ctx.skip();
    await chaos('postgres');
  }, 300_000);
});
