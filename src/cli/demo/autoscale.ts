import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { FarmEvent } from '../../core/types.js';
import { SCALER_PLUGIN } from '../../events/plugins/scaler/index.js';
import { startManager, type RunningManager } from '../../manager/server.js';
import { LocalProvider } from '../../fleet/providers/local.js';
import { until } from './until.js';

/** How often the demo looks: the figures are read from event times, this only bounds the wait. */
const POLL_MS = 50;

/** What `drover demo autoscale` measures (issue 12's figures). */
export interface AutoscaleFigures {
  tasks: number;
  /** Submission → first task rendering, with no worker at submission (goal < 5 s). */
  firstTaskMs: number;
  /** Submission → the fleet's registered workers reaching the decided target. */
  targetReachedMs: number;
  target: number;
  idleShutdownS: number;
  /** Per drained worker: its last finished task → its worker stopped (goal ≤ idle + 2 s). */
  idleStopMs: number[];
  /** Workers stopped while they held a task (goal 0). */
  busyStopped: number;
  launchedMachines: number;
  /** Machines the decisions asked for (launches match them one to one). */
  decidedLaunches: number;
  machineHours: number;
  costHours: number;
  costPerHour: number;
  totalMs: number;
}

export interface AutoscaleDemoOptions {
  tasks: number;
  taskSeconds: number;
  max: number;
  idleShutdownS: number;
  costPerHour: number;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * A fresh farm with one `local` fleet and no worker: submits a job, lets the scaler bring
 * workers up, waits for the job and for the fleet to scale back to zero, and measures it
 * all from the event log.
 */
export async function runAutoscaleDemo(o: AutoscaleDemoOptions): Promise<AutoscaleFigures> {
  const data = mkdtempSync(join(tmpdir(), 'drover-autoscale-demo-'));
  const log = o.log ?? (() => undefined);
  let manager: RunningManager | undefined;
  try {
    manager = await startManager({
      dataDir: data,
      port: 0,
      logger: pino({ level: 'silent' }),
      settings: {
        heartbeatIntervalMs: 1000,
        houseKeepingIntervalMs: 500,
        houseCleaningIntervalMs: 5000,
      },
      providers: [new LocalProvider({ data, terminateOnClose: true })],
    });
    const farm = manager.farm;
    await farm.fleets.create({
      name: 'demo',
      provider: 'local',
      region: 'demo',
      max: o.max,
      idleShutdownS: o.idleShutdownS,
      scaleOutPerMinute: 60,
      capacity: 'on-demand',
      costPerHour: o.costPerHour,
      settings: { drainTimeout: 5, logLevel: 'warn' },
    });
    await farm.plugins?.configure(SCALER_PLUGIN, {
      state: 'global',
      config: { registerTimeout: 60 },
    });
    log(`farm at ${manager.url}: fleet demo (local, max ${o.max}), no worker`);
    // Give the scaler its first look at an empty farm (it makes up the farm id then).
    await new Promise((r) => setTimeout(r, 1500));

    const submitted = Date.now();
    const job = await farm.submitJob({
      name: 'autoscale demo',
      plugin: 'CommandLine',
      pluginInfo: {
        executable: process.execPath,
        arguments: ['-e', `setTimeout(() => {}, ${Math.round(o.taskSeconds * 1000)})`],
      },
      frames: `1-${o.tasks}`,
      regions: ['demo'],
    });
    log(`submitted job ${job.id}: ${o.tasks} tasks of ${o.taskSeconds}s`);
    const store = farm.store;
    const events = (types: FarmEvent['type'][]) => store.listEvents({ types, limit: 1000 });

    const firstStart = await until(
      'the first task to render',
      async () => (await events(['task.started']))[0],
      60_000,
      o.signal,
      POLL_MS,
    );
    log(`first task rendering after ${firstStart.at - submitted} ms on ${firstStart.worker}`);
    const reached = await until(
      'the fleet to reach its target',
      async () => {
        const d = farm.fleets.latest?.decisions.get('demo');
        const running = (await store.fleets.listMachines({ fleet: 'demo', live: true })).filter(
          (m) => m.state === 'running',
        ).length;
        return d && d.target > 0 && running >= d.target
          ? { at: Date.now(), target: d.target }
          : undefined;
      },
      60_000,
      o.signal,
      POLL_MS,
    );
    log(`target ${reached.target} reached after ${reached.at - submitted} ms`);
    await until(
      'the job to finish',
      async () => {
        const j = await store.fetchJob(job.id);
        return j && (j.state === 'completed' || j.state === 'failed') ? j : undefined;
      },
      10 * 60_000,
      o.signal,
      POLL_MS,
    );
    log('job finished; waiting for the fleet to scale to zero');
    await until(
      'the fleet to scale to zero',
      async () =>
        (await store.fleets.listMachines({ live: true })).length === 0 ? true : undefined,
      60_000 + o.idleShutdownS * 1000,
      o.signal,
      POLL_MS,
    );
    await until(
      'the workers to stop',
      async () =>
        (await store.listWorkers()).every((w) => w.runningTasks.length === 0) &&
        (await events(['worker.stopped'])).length >=
          (await store.fleets.listMachines({ fleet: 'demo' })).length
          ? true
          : undefined,
      30_000,
      o.signal,
      POLL_MS,
    );
    const done = Date.now();

    const completed = await events(['task.completed']);
    const stoppedEvents = await events(['worker.stopped']);
    const machines = await store.fleets.listMachines({ fleet: 'demo' });
    const idleStopMs: number[] = [];
    for (const m of machines) {
      const last = completed.filter((e) => e.worker === m.worker).at(-1);
      const stopped = stoppedEvents.find((e) => e.worker === m.worker);
      const idleFrom = last?.at ?? m.registeredAt ?? m.launchedAt;
      if (stopped) idleStopMs.push(stopped.at - idleFrom);
    }
    // A task taken from a worker: requeued or interrupted, or a lost lease of a task that
    // did not end completed by that worker. (A stopping worker resends the report of a task
    // it completed when its long-poll was cut short: refused as lease_lost, harmless.)
    const busyStopped = (
      await events(['task.requeued', 'task.interrupted', 'task.lease_lost'])
    ).filter((e) => {
      if (e.type !== 'task.lease_lost') return true;
      const current = e.data.current as { state?: string; worker?: string } | undefined;
      return current?.state !== 'completed' || current.worker !== e.worker;
    }).length;
    const decisions = await events(['fleet.decision']);
    const decidedLaunches = decisions
      .filter((e) => e.data.fleet === 'demo')
      .reduce((n, e) => n + Number(e.data.launch ?? 0), 0);
    const view = (await farm.fleets.get('demo')).fleet;
    return {
      tasks: o.tasks,
      firstTaskMs: firstStart.at - submitted,
      targetReachedMs: reached.at - submitted,
      target: reached.target,
      idleShutdownS: o.idleShutdownS,
      idleStopMs,
      busyStopped,
      launchedMachines: machines.length,
      decidedLaunches,
      machineHours: view.status.machineHours,
      costHours: view.status.costHours,
      costPerHour: o.costPerHour,
      totalMs: done - submitted,
    };
  } finally {
    await manager?.close();
    rmSync(data, { recursive: true, force: true });
  }
}
