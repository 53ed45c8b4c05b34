import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DroverClient } from '../../client/index.js';
import { startManager, type RunningManager } from '../../manager/server.js';
import { CLI } from '../../../test/farm.js';
import { providerConformance, waitFor } from '../conformance.js';
import { workerName, type WorkerBoot } from '../provider.js';
import { LocalProvider } from './local.js';
import { workerTokenPath } from './worker-process.js';

/** Processes of this test's data folder still alive, by pid (cleanup if a test failed). */
function livePids(data: string): number[] {
  const dir = join(data, 'fleet-machines', 'local');
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const f of files) {
    const { pid } = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { pid: number };
    try {
      // A zombie (exited, about to be reaped) has an empty command line.
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8') !== '') pids.push(pid);
    } catch {
      // gone
    }
  }
  return pids;
}

// Workers of the conformance suite talk to a manager address nothing listens on: they keep
// retrying (as they would while a manager restarts), which is all the suite needs.
const confData = mkdtempSync(join(tmpdir(), 'drover-local-provider-'));
providerConformance('local', {
  open: () =>
    Promise.resolve(new LocalProvider({ data: confData, cliMain: CLI, killGraceMs: 2_000 })),
  settings: { drainTimeout: 1, logLevel: 'warn' },
  boot: (fleet) => ({
    managerUrls: ['http://127.0.0.1:9'],
    token: 'drv_not-a-real-token',
    fleet,
    region: 'local',
    pools: [],
    groups: [],
    slots: 1,
  }),
  unknownId: 'local-00000000',
  badSettings: [
    { value: { maxMachines: 0 }, field: 'maxMachines' },
    { value: { drainTimeout: -1 }, field: 'drainTimeout' },
    { value: { logLevel: 'loud' }, field: 'logLevel' },
  ],
  cleanup() {
    for (const pid of livePids(confData)) process.kill(pid, 'SIGKILL');
    rmSync(confData, { recursive: true, force: true });
    return Promise.resolve();
  },
});

/** Waits like `waitFor`, and on a timeout says what the fleet's worker logs say. */
async function waitWithLogs(
  data: string,
  manager: RunningManager,
  what: string,
  check: () => Promise<boolean>,
) {
  try {
    await waitFor(what, check, 40_000);
  } catch (error) {
    const dir = join(data, 'logs');
    const tails = readdirSync(dir)
      .filter((f) => f.startsWith('lf-'))
      .map((f) => `${f}: ${readFileSync(join(dir, f), 'utf8').slice(-1500)}`);
    const workers = await new DroverClient({ url: manager.url, token: manager.adminToken! })
      .listWorkers()
      .catch(() => []);
    const states = workers.map((w) => `${w.name}=${w.state}`).join(' ');
    throw new Error(`${(error as Error).message}\nworkers: ${states}\n${tails.join('\n')}`);
  }
}

describe('local provider with a real manager', () => {
  let data: string;
  let manager: RunningManager;
  let client: DroverClient;
  let boot: WorkerBoot;

  beforeAll(async () => {
    data = mkdtempSync(join(tmpdir(), 'drover-local-fleet-'));
    manager = await startManager({
      dataDir: data,
      port: 0,
      settings: { heartbeatIntervalMs: 300 },
      logger: pino({ level: 'silent' }),
    });
    client = new DroverClient({ url: manager.url, token: manager.adminToken! });
    // The token a scaler gives a fleet: it acts only as that fleet's workers.
    const { secret } = await manager.auth!.createToken('fleet-lf', 'worker', 'lf-*');
    boot = {
      managerUrls: [manager.url],
      token: secret,
      fleet: 'lf',
      region: 'eu-west-2',
      pools: ['comp', 'fx'],
      groups: ['linux'],
      slots: 2,
    };
  });
  afterAll(async () => {
    for (const pid of livePids(data)) process.kill(pid, 'SIGKILL');
    await manager.close();
    rmSync(data, { recursive: true, force: true });
  });

  it('starts workers that register as their fleet, adopted and stopped by the next manager', async () => {
    const first = new LocalProvider({ data, cliMain: CLI, killGraceMs: 30_000 });
    const { machines, errors } = await first.launch({
      farm: 'f1',
      fleet: 'lf',
      region: 'eu-west-2',
      count: 2,
      clientToken: 'tok-1',
      capacity: 'spot',
      boot,
      settings: { drainTimeout: 1, logLevel: 'info' },
    });
    expect(errors).toEqual([]);
    const names = machines.map((m) => workerName('lf', m.id)).sort();
    await waitWithLogs(data, manager, 'both workers to register', async () => {
      const ws = await client.listWorkers();
      return names.every((n) => ws.some((w) => w.name === n && w.state !== 'offline'));
    });
    const ws = (await client.listWorkers()).filter((w) => names.includes(w.name));
    for (const w of ws) {
      expect(w).toMatchObject({
        region: 'eu-west-2',
        pools: ['comp', 'fx'],
        groups: ['linux'],
        slots: 2,
      });
    }

    // The token is in a file only this user may read, never on a command line or in the
    // worker's environment (which its tasks would inherit).
    const records = machines.map(
      (m) =>
        JSON.parse(readFileSync(join(data, 'fleet-machines', 'local', `${m.id}.json`), 'utf8')) as {
          pid: number;
          worker: string;
        },
    );
    for (const r of records) {
      const cmdline = readFileSync(`/proc/${r.pid}/cmdline`, 'utf8');
      const environ = readFileSync(`/proc/${r.pid}/environ`, 'utf8');
      expect(cmdline).not.toContain(boot.token);
      expect(environ).not.toContain(boot.token);
      expect(statSync(workerTokenPath(data, r.worker)).mode & 0o777).toBe(0o600);
      const log = readFileSync(join(data, 'logs', `${r.worker}.log`), 'utf8');
      expect(log).not.toContain(boot.token);
    }

    // The manager restarts: the provider it makes next finds the same machines.
    await first.close();
    const next = new LocalProvider({ data, cliMain: CLI, killGraceMs: 30_000 });
    const adopted = await next.list('f1');
    expect(adopted.map((m) => m.id).sort()).toEqual(machines.map((m) => m.id).sort());
    expect(adopted.every((m) => m.state === 'running' && m.capacity === 'spot')).toBe(true);
    expect(await next.list('f2')).toEqual([]);
    // The same client token still launches nothing.
    const again = await next.launch({
      farm: 'f1',
      fleet: 'lf',
      region: 'eu-west-2',
      count: 2,
      clientToken: 'tok-1',
      capacity: 'spot',
      boot,
      settings: {},
    });
    expect(again.machines.map((m) => m.id).sort()).toEqual(machines.map((m) => m.id).sort());

    // Another farm may not interrupt or stop them.
    expect(await next.interrupt('f2', machines[0]!.id)).toBe(false);
    expect(await next.interrupt('f1', 'local-00000000')).toBe(false);

    await next.terminate('f1', [machines[0]!.id]);
    await waitFor('the terminated worker to exit', async () => {
      const left = await next.list('f1');
      return left.length === 1 && left[0]!.id === machines[1]!.id;
    });
    // It stopped gracefully (SIGTERM, not SIGKILL): it says so in its log. (Whether the
    // manager then shows it offline is the agent's business: a heartbeat still in flight can
    // race its goodbye, seen under load.)
    const log = join(data, 'logs', `${workerName('lf', machines[0]!.id)}.log`);
    await waitWithLogs(data, manager, 'the worker to log its graceful stop', () =>
      Promise.resolve(readFileSync(log, 'utf8').includes('"msg":"worker stopped"')),
    );
    expect(() => statSync(workerTokenPath(data, workerName('lf', machines[0]!.id)))).toThrow();

    await next.terminate('f1', [machines[1]!.id]);
    await next.close();
    expect(await next.list('f1')).toEqual([]);
    expect(livePids(data)).toEqual([]);
  }, 90_000);

  it('interrupt tells a worker its machine is going away: its task is handed back, no error counted', async () => {
    const p = new LocalProvider({ data, cliMain: CLI, killGraceMs: 2_000, terminateOnClose: true });
    const { machines } = await p.launch({
      farm: 'f4',
      fleet: 'lf',
      region: 'eu-west-2',
      count: 1,
      clientToken: 'tok-interrupt',
      capacity: 'spot',
      // A pool of its own: no other test's worker may take the job.
      boot: { ...boot, pools: ['spot-only'], groups: [], slots: 1 },
      settings: { drainTimeout: 30, logLevel: 'warn' },
    });
    const id = machines[0]!.id;
    const name = workerName('lf', id);
    const job = await client.submitJob({
      name: 'on a spot machine',
      plugin: 'CommandLine',
      pluginInfo: {
        executable: process.execPath,
        arguments: ['-e', 'setTimeout(() => {}, 60000)'],
      },
      frames: '1',
      pool: 'spot-only',
    });
    await waitWithLogs(data, manager, 'the fleet worker to render the task', async () => {
      const [t] = await client.listTasks(job.id);
      return t?.state === 'rendering' && t.worker === name;
    });
    expect(await p.interrupt('f4', id)).toBe(true);
    // Not a drain: the 60 s task is handed back at once and the worker goes.
    await waitFor('the task to be handed back', async () => {
      const [t] = await client.listTasks(job.id);
      return t?.state === 'queued';
    });
    const [task] = await client.listTasks(job.id);
    expect(task!.errorCount).toBe(0);
    const events = await client.listEvents({ job: job.id });
    expect(events.map((e) => e.type)).toContain('task.interrupted');
    await waitFor('the interrupted worker to exit', async () => (await p.list('f4')).length === 0);
    await client.jobAction(job.id, 'suspend');
    await p.close();
  }, 90_000);

  it('keeps a fleet under its maxMachines and says what it did not launch', async () => {
    const p = new LocalProvider({ data, cliMain: CLI, killGraceMs: 2_000, terminateOnClose: true });
    const r = await p.launch({
      farm: 'f3',
      fleet: 'lf',
      region: 'eu-west-2',
      count: 3,
      clientToken: 'tok-cap',
      capacity: 'on-demand',
      boot,
      settings: { maxMachines: 1, drainTimeout: 0 },
    });
    expect(r.machines).toHaveLength(1);
    expect(r.errors).toEqual([
      { code: 'MachineLimit', message: expect.stringContaining('2 not launched') },
    ]);
    await expect(
      p.launch({
        farm: 'f3',
        fleet: 'lf',
        region: 'x',
        count: 1,
        clientToken: 't2',
        capacity: 'spot',
        boot,
        settings: { drainTimeout: 'soon' },
      }),
    ).rejects.toThrow(/settings\.drainTimeout/);
    await p.close();
    expect(await p.list('f3')).toEqual([]);
  });
});
