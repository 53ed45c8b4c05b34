import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DroverClient } from '../../src/client/index.js';
import { routes } from '../../src/api/routes.js';
import type { FarmEvent } from '../../src/core/types.js';
import { LocalProvider } from '../../src/fleet/providers/local.js';
import { startManager, type RunningManager } from '../../src/manager/server.js';
import { CLI, FAST, until, untilJobState } from '../farm.js';

/**
 * Autoscaling with real processes (issue 12): a manager with the `local` provider, a fleet
 * per region and the scaler Global. Work makes `drover worker` processes appear; they go
 * after their idle time; a worker told its machine is going away hands its task back, which
 * completes elsewhere with no error counted.
 */
describe('autoscaling with the local provider', () => {
  let manager: RunningManager | undefined;
  let provider: LocalProvider | undefined;

  afterEach(async () => {
    await manager?.close();
    manager = undefined;
  });

  async function start(fleet: Record<string, unknown>) {
    const dir = mkdtempSync(join(tmpdir(), 'drover-autoscale-'));
    provider = new LocalProvider({ data: dir, cliMain: CLI, terminateOnClose: true });
    manager = await startManager({
      dataDir: dir,
      port: 0,
      settings: FAST,
      logger: pino({ level: 'silent' }),
      providers: [provider],
    });
    const client = new DroverClient({ url: manager.url, token: manager.adminToken! });
    await client.call(routes.createFleet, {
      body: { name: 'r1', provider: 'local', region: 'r1', max: 2, ...fleet },
    });
    await client.configurePlugin('scaler', { state: 'global', config: { registerTimeout: 60 } });
    return { client, dir };
  }

  const events = async (m: RunningManager, types: FarmEvent['type'][]) =>
    m.farm.store.listEvents({ types, limit: 1000 });

  it('starts workers for a job, and stops them after their idle time, never a busy one', async () => {
    const { client } = await start({ idleShutdownS: 3 });
    const m = manager!;
    expect(await m.farm.store.listWorkers()).toEqual([]);
    const submitted = Date.now();
    const job = await client.submitJob({
      name: 'two',
      plugin: 'CommandLine',
      pluginInfo: { executable: process.execPath, arguments: ['-e', 'setTimeout(() => {}, 1500)'] },
      frames: '1-2',
      regions: ['r1'],
    });
    const done = await untilJobState(client, job.id, ['completed', 'failed'], 60_000);
    expect(done).toMatchObject({ state: 'completed', errorCount: 0 });

    // Workers appeared for it: members of the fleet, named after it.
    const launched = await events(m, ['fleet.launched']);
    expect(launched.length).toBeGreaterThan(0);
    const started = await events(m, ['task.started']);
    expect(started.map((e) => e.worker)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^r1-/)]),
    );
    expect(started[0]!.at - submitted).toBeLessThan(30_000);

    // …and go after the idle time: every machine terminated, drained first.
    await until(
      'the fleet to scale to zero',
      async () => (await m.farm.store.fleets.listMachines({ live: true })).length === 0,
      30_000,
    );
    const machines = await m.farm.store.fleets.listMachines({ fleet: 'r1' });
    expect(machines.length).toBeGreaterThan(0);
    expect(machines.every((x) => x.state === 'terminated' && x.failure === null)).toBe(true);
    const drained = await events(m, ['fleet.draining']);
    expect(drained.map((e) => e.worker).sort()).toEqual(machines.map((x) => x.worker).sort());
    // No worker was stopped while it held a task: every task started was completed by it.
    const completed = await events(m, ['task.completed']);
    expect(completed).toHaveLength(2);
    expect(await events(m, ['task.requeued', 'task.failed', 'task.interrupted'])).toEqual([]);
    // Each decision is in the log with its inputs.
    const decisions = await events(m, ['fleet.decision']);
    expect(decisions.some((e) => e.data.fleet === 'r1' && Number(e.data.launch) > 0)).toBe(true);
    for (const e of decisions.filter((d) => d.data.fleet === 'r1')) {
      expect(Object.keys(e.data)).toEqual(
        expect.arrayContaining(['demand', 'idle', 'booting', 'target', 'reason']),
      );
    }
    // Their processes are gone, and they told the manager they stopped (not stalled).
    const farmId = String((await client.getPlugin('scaler')).config.farmId);
    await until(
      'the worker processes to exit',
      async () => (await provider!.list(farmId)).length === 0,
    );
    const stopped = await events(m, ['worker.stopped', 'worker.stalled']);
    expect(stopped.map((e) => `${e.type} ${e.worker}`).sort()).toEqual(
      machines.map((x) => `worker.stopped ${x.worker}`).sort(),
    );
  }, 120_000);

  it('hands an interrupted task back; it completes elsewhere with no error counted', async () => {
    const { client, dir } = await start({ idleShutdownS: 60, capacity: 'spot' });
    const m = manager!;
    const marker = join(dir, 'first-attempt');
    // The first attempt marks itself and runs long; the next one finishes at once.
    const job = await client.submitJob({
      name: 'interrupted',
      plugin: 'CommandLine',
      pluginInfo: {
        executable: process.execPath,
        arguments: [
          '-e',
          'const fs = require("fs"); if (fs.existsSync(process.argv[1])) process.exit(0); fs.writeFileSync(process.argv[1], "x"); setTimeout(() => {}, 60000)',
          marker,
        ],
      },
      frames: '1',
      regions: ['r1'],
      taskRetries: 0,
    });
    const first = await until('the task to render', async () => {
      const [task] = await client.listTasks(job.id);
      return task?.state === 'rendering' && task.worker ? task.worker : undefined;
    });
    // The first attempt's process is running (it wrote its marker).
    await until('the first attempt to start its process', () => existsSync(marker));
    const machine = (await m.farm.store.fleets.listMachines({ live: true })).find(
      (x) => x.worker === first,
    )!;
    const farmId = String((await client.getPlugin('scaler')).config.farmId);
    expect(await provider!.interrupt(farmId, machine.id)).toBe(true);

    const done = await untilJobState(client, job.id, ['completed', 'failed'], 60_000);
    expect(done).toMatchObject({ state: 'completed', errorCount: 0, badWorkers: [] });
    const [task] = await client.listTasks(job.id);
    expect(task).toMatchObject({ state: 'completed', errorCount: 0 });
    expect(task!.worker).not.toBe(first);
    const interrupted = await events(m, ['task.interrupted']);
    expect(interrupted.map((e) => [e.worker, e.data.interruptions])).toEqual([[first, 1]]);
    expect(await events(m, ['task.failed', 'job.error'])).toEqual([]);
  }, 120_000);
});
