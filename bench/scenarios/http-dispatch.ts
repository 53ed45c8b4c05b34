import { windowMs, type BenchConfig } from '../lib/config.js';
import { benchStore, startFarm } from '../lib/farm.js';
import { submitJob } from '../lib/manager.js';
import { checkQuality, type QualityJob } from '../lib/quality.js';
import { lockBreakdown, waitSampler } from '../lib/postgres.js';
import { note, percentile, type Row } from '../lib/report.js';
import { runSwarm } from '../lib/swarm-control.js';

const SCENARIO = '2 HTTP dispatch';
const QUALITY = '6 scheduling quality';
const LICENCE = 'bench-licence';
const LICENCE_MAX = 4;
const MACHINE_LIMIT = 3;

export interface DispatchRun {
  kind: 'sqlite' | 'postgres';
  managers: number;
  workers: number;
}

/** The systems and worker counts scenario 2 measures. */
export function dispatchRuns(c: BenchConfig): DispatchRun[] {
  const runs: DispatchRun[] = [];
  for (const workers of [100, 1000]) {
    runs.push({ kind: 'sqlite', managers: 1, workers });
    // The smoke run keeps the 1,000-worker runs on PostgreSQL out: they take long to start.
    if (c.postgres && !(c.quick && workers > 100)) {
      runs.push({ kind: 'postgres', managers: 1, workers });
      runs.push({ kind: 'postgres', managers: 3, workers });
    }
  }
  return runs;
}

export function systemName(r: Pick<DispatchRun, 'kind' | 'managers'>): string {
  return r.kind === 'sqlite' ? 'Drover SQLite' : `Drover PostgreSQL ${r.managers} mgr`;
}

/**
 * Scenario 2 (and 6): K simulated workers in child processes claim and complete zero-work
 * tasks through the real API against real manager processes. The queue holds one big job
 * (most claims go to it, so one job's tasks are the hot spot), a higher-priority job that
 * drains early, an urgent job whose tasks each hold a licence limited to 4 and a job at most 3
 * workers may render at once (machine limit); the event log is then checked for priority
 * skips, limit overruns and machine-limit overruns (see `lib/quality.ts`).
 */
export async function httpDispatch(
  c: BenchConfig,
  run: DispatchRun,
): Promise<{ rows: Row[]; rate: number }> {
  const system = systemName(run);
  const label = `${run.kind}-${run.managers}m-${run.workers}w`;
  const store = await benchStore(c, run.kind, 'dispatch');
  const rows: Row[] = [];
  let rate = 0;
  try {
    const farm = await startFarm(c, store, run.managers);
    let jobs: QualityJob[];
    try {
      const { warmupMs, measureMs } = windowMs(c);
      // Enough for the window at well above the goal rates, so the big job never drains.
      const bigTasks = c.quick ? 20_000 : run.kind === 'sqlite' ? 200_000 : 80_000;
      await farm.first.admin.call('PUT', `/api/v1/limits/${LICENCE}`, { max: LICENCE_MAX });
      const spec = [
        { name: 'urgent', priority: 90, tasks: c.quick ? 200 : 2000, limits: [LICENCE] },
        // At most MACHINE_LIMIT workers at once: scenario 6 counts machine-limit overruns.
        {
          name: 'capped',
          priority: 80,
          tasks: c.quick ? 200 : 1000,
          limits: [],
          machineLimit: MACHINE_LIMIT,
        },
        { name: 'mid', priority: 70, tasks: c.quick ? 200 : 1000, limits: [] },
        { name: 'big', priority: 50, tasks: bigTasks, limits: [] },
      ];
      jobs = [];
      for (const s of spec) {
        const id = await submitJob(farm.first, {
          name: s.name,
          priority: s.priority,
          frames: `1-${s.tasks}`,
          limits: s.limits,
          machineLimit: s.machineLimit ?? 0,
        });
        jobs.push({
          id,
          priority: s.priority,
          tasks: s.tasks,
          limits: s.limits,
          machineLimit: s.machineLimit ?? 0,
        });
      }
      await store.analyze();
      // PostgreSQL: what the managers' connections wait for in the window.
      const sampler = store.kind === 'postgres' ? await waitSampler(store.location) : undefined;
      const result = await runSwarm(
        {
          mode: 'dispatch',
          urls: farm.managers.map((m) => m.url),
          token: farm.token,
          prefix: `w${run.workers}`,
          workers: run.workers,
          warmupMs,
          measureMs,
          waitMs: 1000,
          heartbeatMs: 5000,
          renderMs: [0, 0],
        },
        c.swarmProcesses,
      );
      // The last `measureMs` of the swarm's run are its window.
      const waits = await sampler?.stop(measureMs);
      const big = await farm.first.admin.call<{ job: { counts: { queued: number } } }>(
        'GET',
        `/api/v1/jobs/${jobs[3]!.id}`,
      );
      if (big.job.counts.queued === 0) note(`${label}: the big job drained: the rate is too low`);
      if (result.errors > 0) note(`${label}: ${result.errors} errors, first: ${result.firstError}`);
      rate = result.cycles / (measureMs / 1000);
      const at = { scenario: SCENARIO, system: `${system}, ${run.workers} workers` };
      rows.push(
        { ...at, metric: 'task cycles', value: rate, unit: '/s' },
        {
          ...at,
          metric: 'claim latency p50',
          value: percentile(result.claimLatencies, 50),
          unit: 'ms',
        },
        {
          ...at,
          metric: 'claim latency p99',
          value: percentile(result.claimLatencies, 99),
          unit: 'ms',
        },
      );
      if (result.errors > 0) rows.push({ ...at, metric: 'errors', value: result.errors, unit: '' });
      if (waits && waits.active > 0) {
        const pct = (n: number) => (100 * n) / waits.active;
        note(
          `${label}: ${waits.active} active samples, ${waits.lock} on a lock (${lockBreakdown(waits)}), ${waits.wal} on WAL`,
        );
        rows.push(
          { ...at, metric: 'active connections on a lock', value: pct(waits.lock), unit: '%' },
          { ...at, metric: 'active connections on WAL', value: pct(waits.wal), unit: '%' },
        );
      }
      note(`${SCENARIO} ${label}: ${rate.toFixed(0)} cycles/s`);
    } finally {
      await farm.stop();
    }
    const q = checkQuality(jobs, new Map([[LICENCE, LICENCE_MAX]]), await store.events());
    const at = { scenario: QUALITY, system: `${system}, ${run.workers} workers` };
    rows.push(
      { ...at, metric: 'claims checked', value: q.claims, unit: '' },
      { ...at, metric: 'skipped higher priority', value: q.skipped, unit: '' },
      { ...at, metric: 'limit overruns', value: q.overruns, unit: '' },
      { ...at, metric: 'machine-limit overruns', value: q.machineLimitOverruns, unit: '' },
    );
    if (q.skipped > 0) {
      rows.push({
        ...at,
        metric: 'of which of the limited job',
        value: q.skippedLimited,
        unit: '',
      });
    }
    if (run.kind === 'postgres')
      rows.push({ ...at, metric: 'limit races', value: q.limitRaces, unit: '' });
  } finally {
    await store.drop();
  }
  return { rows, rate };
}
