/**
 * `npm run bench` — Drover's benchmarks, side by side with its peers (see BENCHMARKS.md).
 *
 *   npm run bench                  the full run: a Markdown table on stdout
 *   npm run bench -- --json        the rows as a JSON array {scenario, system, metric, value, unit}
 *   npm run bench -- --quick       a short smoke run (CI): small sizes, figures not meaningful
 *   npm run bench -- --only 1,2    only some scenarios (numbers as in BENCHMARKS.md)
 *
 * Progress goes to stderr. PostgreSQL rows need a server (`DROVER_TEST_POSTGRES_URL`, default
 * the local one); BullMQ needs Redis on 127.0.0.1:6379 (`BENCH_REDIS_URL`). A peer or server
 * that is not there is left out with a note, never a failure.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchConfig } from './lib/config.js';
import { postgresReachable } from './lib/postgres.js';
import { formatTable, note, type Row } from './lib/report.js';
import { dispatchRuns, httpDispatch, systemName } from './scenarios/http-dispatch.js';
import { largeFarm } from './scenarios/large-farm.js';
import { manyWorkers } from './scenarios/many-workers.js';
import { peers } from './scenarios/peers.js';
import { storeCeiling } from './scenarios/store-ceiling.js';
import { submission } from './scenarios/submission.js';

function parseArgs(argv: readonly string[]): { quick: boolean; json: boolean; only: Set<number> } {
  const only = new Set<number>();
  let quick = false;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--json') json = true;
    else if (a === '--only') for (const n of (argv[++i] ?? '').split(',')) only.add(Number(n));
    else throw new Error(`unknown option ${a} (use --quick, --json, --only 1,2,…)`);
  }
  return { quick, json, only };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const wanted = (n: number) => args.only.size === 0 || args.only.has(n);
  const postgres = await postgresReachable();
  if (!postgres) note('PostgreSQL is not reachable: its rows are left out');
  const tmp = await mkdtemp(join(tmpdir(), 'drover-bench-'));
  const c: BenchConfig = { quick: args.quick, postgres, tmp, swarmProcesses: 2 };
  const rows: Row[] = [];
  const started = performance.now();
  try {
    let ceiling: Row[] = [];
    if (wanted(1)) {
      ceiling = await storeCeiling(c);
      rows.push(...ceiling);
    }
    const rates = new Map<string, number>();
    if (wanted(2) || wanted(6) || wanted(3)) {
      const dispatchRows: Row[] = [];
      const qualityRows: Row[] = [];
      for (const run of dispatchRuns(c)) {
        const r = await httpDispatch(c, run);
        rates.set(`${systemName(run)}, ${run.workers} workers`, r.rate);
        for (const row of r.rows)
          (row.scenario.startsWith('6') ? qualityRows : dispatchRows).push(row);
      }
      const sqliteCeiling = ceiling.find(
        (r) => r.system === 'SQLite' && r.metric === 'task cycles',
      )?.value;
      const sqlite1000 = rates.get('Drover SQLite, 1000 workers');
      if (sqliteCeiling && sqlite1000 !== undefined) {
        dispatchRows.push({
          scenario: '2 HTTP dispatch',
          system: 'Drover SQLite, 1000 workers',
          metric: 'share of store ceiling',
          value: (100 * sqlite1000) / sqliteCeiling,
          unit: '%',
        });
      }
      if (wanted(2)) rows.push(...dispatchRows);
      if (wanted(6)) rows.push(...qualityRows);
    }
    if (wanted(3)) rows.push(...(await peers(c, rates)));
    if (wanted(4) || wanted(7)) {
      const r = await submission(c, wanted(7) ? largeFarm : undefined);
      if (wanted(4)) rows.push(...r.filter((row) => row.scenario.startsWith('4')));
      if (wanted(7)) rows.push(...r.filter((row) => row.scenario.startsWith('7')));
    }
    if (wanted(5)) rows.push(...(await manyWorkers(c)));
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  note(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  process.stdout.write(args.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatTable(rows)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
