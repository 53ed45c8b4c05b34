import { describe, expect, it } from 'vitest';
import type { Job, Worker, WorkerState } from '../core/types.js';
import { noWorkerReason, OFFERS_TTL_MS, PluginOffers } from './plugin-offers.js';

type Shown = Pick<Job, 'state' | 'plugin' | 'pendingReason'>;

function worker(name: string, state: WorkerState, apps: string[]): Worker {
  return {
    name,
    region: 'default',
    pools: [],
    groups: [],
    slots: 1,
    capabilities: { cpus: 1, memoryMb: 1, os: 'linux', gpus: 0 },
    state,
    enabled: state !== 'disabled',
    version: '',
    apps,
    runningTasks: [],
    registeredAt: 0,
    lastSeenAt: 0,
  };
}

describe('the pending reason of a job no worker can run', () => {
  const maya: Shown = { state: 'queued', plugin: 'MayaBatch', pendingReason: '' };

  it('names the plugin while no worker that can take work offers it', async () => {
    let workers = [
      worker('plain', 'idle', []),
      worker('off', 'offline', ['MayaBatch']),
      worker('held', 'disabled', ['MayaBatch']),
    ];
    let t = 0;
    const offers = new PluginOffers(
      () => Promise.resolve(workers),
      () => t,
    );
    expect(await offers.explain([maya])).toEqual([
      { ...maya, pendingReason: 'no worker offers plugin MayaBatch' },
    ]);
    expect(noWorkerReason('MayaBatch')).toBe('no worker offers plugin MayaBatch');

    workers = [...workers, worker('maya', 'rendering', ['MayaBatch'])];
    // Within the TTL the last look answers; after it the new worker counts.
    expect((await offers.explain([maya]))[0]?.pendingReason).not.toBe('');
    t += OFFERS_TTL_MS;
    expect(await offers.explain([maya])).toEqual([maya]);
  });

  it('leaves built-in plugins, other states and other reasons alone without asking', async () => {
    let asked = 0;
    const offers = new PluginOffers(() => {
      asked++;
      return Promise.resolve([]);
    });
    const jobs: Shown[] = [
      { state: 'queued', plugin: 'CommandLine', pendingReason: '' },
      { state: 'pending', plugin: 'MayaBatch', pendingReason: 'waiting for dependencies' },
      { state: 'rendering', plugin: 'MayaBatch', pendingReason: '' },
      { state: 'completed', plugin: 'Nuke', pendingReason: '' },
    ];
    expect(await offers.explain(jobs)).toEqual(jobs);
    expect(asked).toBe(0);
  });

  it('asks the store once for many jobs and concurrent callers', async () => {
    let asked = 0;
    const offers = new PluginOffers(async () => {
      asked++;
      await new Promise((r) => setImmediate(r));
      return [worker('nuke', 'idle', ['Nuke'])];
    });
    const jobs: Shown[] = ['Nuke', 'MayaBatch', 'Houdini'].map((plugin) => ({
      state: 'queued',
      plugin,
      pendingReason: '',
    }));
    const [a, b] = await Promise.all([offers.explain(jobs), offers.explain(jobs)]);
    expect(asked).toBe(1);
    expect(a?.map((j) => j.pendingReason)).toEqual([
      '',
      'no worker offers plugin MayaBatch',
      'no worker offers plugin Houdini',
    ]);
    expect(b).toEqual(a);
  });
});
