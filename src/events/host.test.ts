import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../store/contract.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { prepareSubmission } from '../core/submission.js';
import type { JobSubmissionInput } from '../core/job-spec.js';
import { workerRegistrationSchema } from '../core/worker-protocol.js';
import { PluginHost } from './host.js';
import { loadPlugins } from './loader.js';
import type { EventPlugin } from './plugin.js';

const quiet = pino({ level: 'silent' });

async function until(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('event plugin host', () => {
  let dir: string;
  let store: Store;
  const hosts: PluginHost[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'drover-events-'));
    store = await openSqliteStore(join(dir, 'drover.db'));
  });
  afterEach(async () => {
    await Promise.all(hosts.splice(0).map((h) => h.stop()));
    await store.close();
  });

  async function startHost(plugins: EventPlugin[]): Promise<PluginHost> {
    const host = new PluginHost({ store, plugins, log: quiet, pollMs: 20 });
    await host.start();
    hosts.push(host);
    return host;
  }

  /** Submits as the manager does: held for the plugins whose submit handlers apply. */
  async function submit(host: PluginHost, input: Partial<JobSubmissionInput> = {}) {
    const { submission, frames } = prepareSubmission({
      plugin: 'CommandLine',
      pluginInfo: { executable: '/bin/true' },
      ...input,
    });
    const job = await store.createJob(submission, frames, {
      holdFor: await host.holdFor(submission),
    });
    host.wake();
    return job;
  }

  function recorder(name: string, calls: string[], extra: Partial<EventPlugin> = {}): EventPlugin {
    return {
      name,
      description: 'records calls',
      defaultState: 'global',
      config: [{ key: 'n', type: 'integer', label: 'N', default: 1, min: 0, max: 10 }],
      handlers: {
        onJobSubmitted: async (job) => {
          calls.push(`submitted ${job.name} ${job.state}`);
          await new Promise((r) => setTimeout(r, 50));
        },
        onJobFinished: (job) => void calls.push(`finished ${job.name}`),
        onWorkerStarted: (worker) => void calls.push(`worker ${worker}`),
      },
      ...extra,
    };
  }

  it('holds a job until the job-submitted handler has run, then releases it', async () => {
    const calls: string[] = [];
    const host = await startHost([recorder('rec', calls)]);
    const job = await submit(host, { name: 'a' });
    expect(job).toMatchObject({ state: 'pending', heldFor: ['rec'] });
    await until(async () => (await store.fetchJob(job.id))?.state === 'queued');
    // The handler saw the job while it was still held: nothing could have dispatched it.
    expect(calls).toEqual(['submitted a pending']);
  });

  it('leaves a job pending with the reason when the handler throws; a user can release it', async () => {
    const failing: EventPlugin = {
      name: 'failing',
      description: '',
      defaultState: 'global',
      config: [],
      handlers: {
        onJobSubmitted: () => {
          throw new Error('no licence server');
        },
      },
    };
    const host = await startHost([failing]);
    const job = await submit(host);
    await until(
      async () => (await store.fetchJob(job.id))?.pendingReason.includes('failed') ?? false,
    );
    const held = await store.fetchJob(job.id);
    expect(held).toMatchObject({
      state: 'pending',
      pendingReason: 'event plugin failing failed: no licence server',
    });
    const events = await store.listEvents({ jobId: job.id, types: ['job.pended'] });
    expect(events.at(-1)?.data.reason).toBe('event plugin failing failed: no licence server');
    expect((await store.applyJobAction(job.id, 'release')).state).toBe('queued');
  });

  it('runs opt-in plugins only for jobs that list them, and disabled ones not at all', async () => {
    const calls: string[] = [];
    const host = await startHost([recorder('rec', calls, { defaultState: 'opt-in' })]);
    const plain = await submit(host, { name: 'plain' });
    expect(plain.state).toBe('queued');
    const opted = await submit(host, { name: 'opted', eventOptIns: ['rec'] });
    await until(async () => (await store.fetchJob(opted.id))?.state === 'queued');
    expect(calls).toEqual(['submitted opted pending']);
    await host.configure('rec', { state: 'disabled' });
    const off = await submit(host, { name: 'off', eventOptIns: ['rec'] });
    expect(off.state).toBe('queued');
  });

  it('validates configuration on save and changes nothing on a bad value', async () => {
    const host = await startHost([recorder('rec', [])]);
    await expect(host.configure('rec', { config: { n: 11 } })).rejects.toMatchObject({
      field: 'config.n',
    });
    await expect(host.configure('rec', { config: { m: 1 } })).rejects.toMatchObject({
      field: 'config.m',
    });
    expect(host.show('rec').config).toEqual({ n: 1 });
    expect((await host.configure('rec', { config: { n: '7' } })).config).toEqual({ n: 7 });
    expect((await store.listPluginSettings())[0]).toMatchObject({ name: 'rec', config: { n: 7 } });
  });

  it('delivers worker events to global plugins', async () => {
    const calls: string[] = [];
    await startHost([recorder('rec', calls)]);
    await store.registerWorker(
      workerRegistrationSchema.parse({
        name: 'w9',
        capabilities: { cpus: 1, memoryMb: 1, os: 'linux' },
      }),
    );
    await until(() => Promise.resolve(calls.includes('worker w9')));
  });

  it('runs a handler again after a restart when it was interrupted (at least once)', async () => {
    const calls: string[] = [];
    const hang: EventPlugin = {
      name: 'hang',
      description: '',
      defaultState: 'global',
      config: [],
      handlers: {
        onJobFinished: (job) => {
          calls.push(`first ${job.id}`);
          return new Promise(() => undefined); // the process "dies" inside the handler
        },
      },
    };
    const first = new PluginHost({ store, plugins: [hang], log: quiet, pollMs: 20 });
    await first.start();
    const { submission, frames } = prepareSubmission({
      plugin: 'CommandLine',
      pluginInfo: { executable: '/bin/true' },
    });
    const job = await store.createJob(submission, frames);
    await store.registerWorker(
      workerRegistrationSchema.parse({
        name: 'w1',
        capabilities: { cpus: 1, memoryMb: 1, os: 'linux' },
      }),
    );
    const task = await store.claimTask('w1');
    await store.reportTask('w1', {
      lease: task!.lease,
      outcome: 'completed',
      exitCode: 0,
      message: '',
    });
    await until(() => Promise.resolve(calls.length === 1));
    // A new manager process: same store, a fresh host.
    const again: string[] = [];
    await startHost([
      { ...hang, handlers: { onJobFinished: (j) => void again.push(`again ${j.id}`) } },
    ]);
    await until(() => Promise.resolve(again.length === 1));
    expect(again).toEqual([`again ${job.id}`]);
  });
});

describe('loading third-party plugins', () => {
  it('loads a plugin module and refuses one of the wrong shape', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-plugins-'));
    writeFileSync(
      join(dir, 'hello.mjs'),
      `export default { name: 'hello', description: 'says hello', config: [{ key: 'greeting', type: 'string', label: 'Greeting', default: 'hi' }], handlers: { onJobFinished() {} } };`,
    );
    const plugins = await loadPlugins(dir);
    expect(plugins.map((p) => p.name)).toEqual(['hello']);
    writeFileSync(
      join(dir, 'zbad.mjs'),
      `export default { name: 'Bad Name', handlers: { onJobFinished: 3 } };`,
    );
    await expect(loadPlugins(dir)).rejects.toThrow(/zbad\.mjs is not an event plugin: name/);
  });

  it('refuses a path setting whose default is not an absolute path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-plugins-'));
    writeFileSync(
      join(dir, 'roots.mjs'),
      `export default { name: 'roots', config: [{ key: 'root', type: 'path', label: 'Root', default: '../../etc' }], handlers: {} };`,
    );
    await expect(loadPlugins(dir)).rejects.toThrow(
      /roots\.mjs is not an event plugin: config\.0\.default: .*not an absolute path/,
    );
  });
});
