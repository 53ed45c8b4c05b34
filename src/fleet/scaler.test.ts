import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { jobSubmissionSchema } from '../core/job-spec.js';
import { parseFrameList } from '../core/frames.js';
import { workerRegistrationSchema } from '../core/worker-protocol.js';
import type { Store } from '../store/contract.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import {
  ProviderError,
  type FleetProvider,
  type LaunchRequest,
  type LaunchResult,
  type Machine,
} from './provider.js';
import { Scaler } from './scaler.js';
import { FleetService } from './service.js';

/**
 * The scaler's crash safety and failure handling, step by step on a real SQLite store with
 * a provider that only keeps a list (no processes): decisions are the pure function's
 * (`decide.test.ts`); here, what the loop does with the provider and the store.
 */
class ListProvider implements FleetProvider {
  readonly kind = 'fake';
  readonly machineIdPrefix = 'm';
  readonly settingsSchema = z.object({}).strict();
  machines: Machine[] = [];
  launches: LaunchRequest[] = [];
  terminated: string[] = [];
  fail: ProviderError | undefined;
  #n = 0;
  constructor(private readonly now: () => number) {}
  launch(request: LaunchRequest): Promise<LaunchResult> {
    this.launches.push(request);
    if (this.fail) return Promise.reject(this.fail);
    const made: Machine[] = [];
    for (let i = 0; i < request.count; i++) {
      made.push({
        id: `m${++this.#n}`,
        farm: request.farm,
        fleet: request.fleet,
        state: 'running',
        launchedAt: this.now(),
        capacity: request.capacity,
      });
    }
    this.machines.push(...made);
    return Promise.resolve({ machines: made, errors: [] });
  }
  terminate(_farm: string, ids: readonly string[]): Promise<void> {
    this.terminated.push(...ids);
    this.machines = this.machines.filter((m) => !ids.includes(m.id));
    return Promise.resolve();
  }
  list(farm: string): Promise<Machine[]> {
    return Promise.resolve(this.machines.filter((m) => m.farm === farm));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const FARM = 'farm-test';
const config = {
  farmId: FARM,
  registerTimeout: 60,
  pauseAfterFailures: 2,
  interruptionsBeforeOnDemand: 2,
};

describe('the scaler loop', () => {
  let store: Store;
  let t: number;
  let provider: ListProvider;
  let fleets: FleetService;
  let scaler: Scaler;
  const tokens: string[] = [];

  beforeEach(async () => {
    t = 1_800_000_000_000;
    store = await openSqliteStore(
      join(mkdtempSync(join(tmpdir(), 'drover-scaler-')), 'drover.db'),
      { now: () => t },
    );
    provider = new ListProvider(() => t);
    fleets = new FleetService(store, () => t);
    fleets.addProvider(provider);
    scaler = new Scaler({
      store,
      fleets,
      log: pino({ level: 'silent' }),
      plugin: () => ({ state: 'global', config }),
      saveConfig: () => Promise.resolve(),
      lead: () => Promise.resolve(true),
      managerUrls: () => ['http://manager'],
      createWorkerToken: (name, pattern) => {
        tokens.push(`${name} ${pattern}`);
        return Promise.resolve('secret-token');
      },
      listEveryMs: 0,
      now: () => t,
    });
    await fleets.create({ name: 'r1', provider: 'fake', region: 'r1', max: 4, idleShutdownS: 30 });
  });

  afterEach(async () => {
    await store.close();
  });

  async function submit(frames: string) {
    const sub = jobSubmissionSchema.parse({ plugin: 'CommandLine', frames, regions: ['r1'] });
    return store.createJob(sub, parseFrameList(sub.frames));
  }

  async function registerAll() {
    for (const m of provider.machines) {
      await store.registerWorker(
        workerRegistrationSchema.parse({
          name: `r1-${m.id}`,
          region: 'r1',
          capabilities: { cpus: 1, memoryMb: 1, os: 'linux' },
        }),
      );
    }
  }

  it('launches for demand with a token scoped to the fleet, tagged, and records it', async () => {
    await submit('1-3');
    await scaler.reconcile(config);
    expect(provider.launches).toHaveLength(1);
    const launch = provider.launches[0]!;
    expect(launch).toMatchObject({ farm: FARM, fleet: 'r1', count: 3, region: 'r1' });
    expect(launch.boot).toMatchObject({ token: 'secret-token', managerUrls: ['http://manager'] });
    // Scoped to the fleet's machines only: `r1-m*`, not `r1-*` (a worker `r1-west` is not one).
    expect(tokens).toEqual([expect.stringMatching(/^fleet-r1-\w+ r1-m\*$/)]);
    const machines = await store.fleets.listMachines({ live: true });
    expect(machines.map((m) => [m.worker, m.state])).toEqual(
      expect.arrayContaining([
        ['r1-m1', 'booting'],
        ['r1-m2', 'booting'],
        ['r1-m3', 'booting'],
      ]),
    );
    // Booting machines count: a second look launches nothing more.
    await scaler.reconcile(config);
    expect(provider.launches).toHaveLength(1);
    // The secret is in no event.
    const events = await store.listEvents({ limit: 1000 });
    expect(JSON.stringify(events)).not.toContain('secret-token');
    const launched = events.filter((e) => e.type === 'fleet.launched');
    expect(launched[0]!.data).toMatchObject({ fleet: 'r1', asked: 3 });
  });

  it('adopts tagged machines it did not record (a restart between launch and record) and sweeps orphans', async () => {
    provider.machines.push(
      { id: 'lost', farm: FARM, fleet: 'r1', state: 'running', launchedAt: t, capacity: 'spot' },
      {
        id: 'orphan',
        farm: FARM,
        fleet: 'gone',
        state: 'running',
        launchedAt: t,
        capacity: 'spot',
      },
      {
        id: 'other',
        farm: 'another-farm',
        fleet: 'r1',
        state: 'running',
        launchedAt: t,
        capacity: 'spot',
      },
    );
    await scaler.reconcile(config);
    const machines = await store.fleets.listMachines({});
    expect(machines.map((m) => m.id)).toEqual(['lost']);
    expect(provider.terminated).toEqual(['orphan']);
    // Another farm's machine is never touched.
    expect(provider.machines.map((m) => m.id)).toContain('other');
  });

  it('marks registered machines running, and terminates and counts those that never register, pausing the fleet', async () => {
    await submit('1-2');
    await scaler.reconcile(config);
    await registerAll();
    t += 1000;
    await scaler.reconcile(config);
    expect((await store.fleets.listMachines({ live: true })).map((m) => m.state)).toEqual([
      'running',
      'running',
    ]);

    // Two more that never register: terminated after the timeout, then the fleet pauses.
    await submit('1-2');
    t += 1000;
    await scaler.reconcile(config);
    expect(provider.launches).toHaveLength(2);
    t += 61_000;
    await scaler.reconcile(config);
    const failed = (await store.fleets.listMachines({})).filter((m) => m.failure);
    expect(failed).toHaveLength(2);
    expect(failed[0]!.failure).toMatch(/did not register within 60s/);
    const fleet = (await store.fleets.fetchFleet('r1'))!;
    expect(fleet.pausedReason).toMatch(/last 2 machines never registered/);
    // Paused: launches nothing, and says why.
    const before = provider.launches.length;
    t += 1000;
    await scaler.reconcile(config);
    expect(provider.launches).toHaveLength(before);
    expect(fleets.latest?.decisions.get('r1')?.reason).toMatch(/paused/);
  });

  it('backs off a provider error, records it, and tries again later', async () => {
    provider.fail = new ProviderError('InsufficientInstanceCapacity', 'no capacity in r1a', true);
    await submit('1');
    await scaler.reconcile(config);
    const errors = await store.listEvents({ types: ['fleet.error'] });
    expect(errors.map((e) => [e.data.code, e.data.message])).toEqual([
      ['InsufficientInstanceCapacity', 'no capacity in r1a'],
    ]);
    t += 1000;
    await scaler.reconcile(config);
    expect(provider.launches).toHaveLength(1);
    expect(fleets.latest?.decisions.get('r1')?.reason).toMatch(/backing off/);
    provider.fail = undefined;
    t += 6000;
    await scaler.reconcile(config);
    expect(provider.launches).toHaveLength(2);
    expect(await store.fleets.listMachines({ live: true })).toHaveLength(1);
  });

  it('drains an idle member after its idle time and stops it only once its tasks ended', async () => {
    await submit('1');
    await scaler.reconcile(config);
    await registerAll();
    const worker = 'r1-m1';
    const task = (await store.claimTask(worker))!;
    t += 1000;
    await scaler.reconcile(config);
    await store.reportTask(worker, {
      lease: task.lease,
      outcome: 'completed',
      exitCode: 0,
      message: '',
    });
    t += 1000;
    await scaler.reconcile(config);
    // Not yet: idle 1 s of 30.
    expect((await store.fleets.listMachines({ live: true }))[0]!.state).toBe('running');
    t += 30_000;
    await scaler.reconcile(config);
    // Drained (disabled) and, being idle, stopped on the same or the next look.
    t += 1000;
    await scaler.reconcile(config);
    expect(await store.fleets.listMachines({ live: true })).toEqual([]);
    expect(provider.terminated).toEqual(['m1']);
    expect((await store.fetchWorker(worker))!.enabled).toBe(false);
    const draining = await store.listEvents({ types: ['fleet.draining'] });
    expect(draining.map((e) => e.worker)).toEqual([worker]);
  });
});
