import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../../core/plugin-config.js';
import { prepareSubmission } from '../../../core/submission.js';
import type { JobSubmissionInput } from '../../../core/job-spec.js';
import type { Job } from '../../../core/types.js';
import { workerRegistrationSchema } from '../../../core/worker-protocol.js';
import type { Store } from '../../../store/contract.js';
import { openSqliteStore } from '../../../store/sqlite/index.js';
import { PluginHost } from '../../host.js';
import {
  FOLDER_JOB_FOR,
  RESULT_PREFIX,
  folderJobFor,
  gfsSyncPlugin,
  isPluginGenerated,
  parseOutcomes,
  uniqueDirectories,
} from './index.js';

const quiet = pino({ level: 'silent' });
const config = defaultConfig(gfsSyncPlugin.config);

function job(over: Partial<Job> = {}): Job {
  const { submission } = prepareSubmission({
    plugin: 'CommandLine',
    pluginInfo: { executable: '/bin/true' },
  });
  return {
    ...submission,
    id: 'render1',
    name: 'shot010',
    priority: 50,
    pool: 'render',
    group: 'gpu',
    limits: ['arnold'],
    regions: ['us-west-2', 'eu-west-2'],
    outputDirectories: ['/gfs/show/a', '/gfs/show/b', '/gfs/show/a'],
    state: 'pending',
    pendingReason: '',
    frameCount: 1,
    taskCount: 1,
    counts: { pending: 0, queued: 1, rendering: 0, completed: 0, failed: 0, suspended: 0 },
    errorCount: 0,
    badWorkers: [],
    heldFor: [],
    pluginData: {},
    submittedAt: 0,
    startedAt: null,
    finishedAt: null,
    ...over,
  };
}

describe('gfs-sync: the folder job', () => {
  it("falls back to the render job's options where the configuration is blank", () => {
    const f = folderJobFor(job(), config);
    expect(f).toMatchObject({
      name: 'shot010 [Make Directories]',
      batchName: 'shot010',
      pool: 'render',
      group: 'gpu',
      limits: ['arnold'],
      priority: 50,
      regions: ['us-west-2'],
      plugin: 'MakeDirectories',
      frames: '0',
      extraInfo: { HS_PLUGIN_GENERATED: 'True', [FOLDER_JOB_FOR]: 'render1' },
    });
    expect(f.pluginInfo).toMatchObject({
      directories: ['/gfs/show/a', '/gfs/show/b'],
      iterationDelay: 1,
      iterationCount: 20,
    });
  });

  it('takes configured options and clamps the priority to 0–100', () => {
    const c = {
      ...config,
      pool: 'infra',
      group: 'io',
      limits: 'gfs, io',
      priorityOffset: 80,
      region: 'eu-west-2',
    };
    expect(folderJobFor(job({ priority: 50 }), c)).toMatchObject({
      pool: 'infra',
      group: 'io',
      limits: ['gfs', 'io'],
      priority: 100,
      regions: ['eu-west-2'],
    });
    expect(folderJobFor(job({ priority: 10 }), { ...config, priorityOffset: -50 }).priority).toBe(
      0,
    );
  });

  it("keeps the render job's batch name when it has one", () => {
    expect(folderJobFor(job({ batchName: 'seq010' }), config).batchName).toBe('seq010');
  });

  it('recognises its own jobs case-insensitively, and de-duplicates directories in order', () => {
    expect(isPluginGenerated({ extraInfo: { HS_PLUGIN_GENERATED: 'true' } })).toBe(true);
    expect(isPluginGenerated({ extraInfo: { HS_PLUGIN_GENERATED: 'False' } })).toBe(false);
    expect(isPluginGenerated({ extraInfo: {} })).toBe(false);
    expect(uniqueDirectories(['/b', '/a', '/b'])).toEqual(['/b', '/a']);
  });

  it('reads outcomes from the folder job log and matches them to the unmapped directories', () => {
    const log = [
      { attempt: 1, seq: 1, at: 0, stream: 'stdout' as const, text: 'Sync Complete: /mnt/a\n' },
      {
        attempt: 1,
        seq: 2,
        at: 0,
        stream: 'stdout' as const,
        text: `${RESULT_PREFIX}{"outcomes":["Sync Complete","Sync Skipped"]}\n`,
      },
    ];
    expect(parseOutcomes(log, ['/gfs/a', '/gfs/b'])).toEqual([
      { directory: '/gfs/a', outcome: 'Sync Complete' },
      { directory: '/gfs/b', outcome: 'Sync Skipped' },
    ]);
    expect(parseOutcomes(log.slice(0, 1), ['/gfs/a'])).toBeUndefined();
  });
});

describe('gfs-sync on a farm', () => {
  let store: Store;
  let host: PluginHost;
  beforeEach(async () => {
    store = await openSqliteStore(
      join(mkdtempSync(join(tmpdir(), 'drover-gfs-sync-')), 'drover.db'),
    );
    host = new PluginHost({ store, plugins: [gfsSyncPlugin], log: quiet, pollMs: 20 });
    await host.start();
    await host.configure('gfs-sync', {
      state: 'global',
      config: { gfs: 'simulated', gfsRoot: '/tmp/sim' },
    });
  });
  afterEach(async () => {
    await host.stop();
    await store.close();
  });

  async function submit(input: Partial<JobSubmissionInput>) {
    const { submission, frames } = prepareSubmission({
      plugin: 'CommandLine',
      pluginInfo: { executable: '/bin/true' },
      ...input,
    });
    const j = await store.createJob(submission, frames, {
      holdFor: await host.holdFor(submission),
    });
    host.wake();
    return j;
  }
  async function settle(id: string): Promise<Job> {
    for (let i = 0; i < 250; i++) {
      const j = await store.fetchJob(id);
      if (j && j.heldFor.length === 0) return j;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`still held: ${JSON.stringify(await store.fetchJob(id))}`);
  }

  it('inserts a folder job, keeps existing dependencies and holds the render job until it completes', async () => {
    const earlier = await submit({ name: 'cache' });
    const render = await submit({
      name: 'shot010',
      outputDirectories: ['/gfs/show/shot010'],
      dependencies: [earlier.id],
      regions: ['us-west-2', 'eu-west-2'],
    });
    expect(render.state).toBe('pending');
    const held = await settle(render.id);
    expect(held.state).toBe('pending');
    expect(held.batchName).toBe('shot010');
    const folderId = held.dependencies.find((d) => d !== earlier.id)!;
    expect(held.dependencies).toContain(earlier.id);
    const folder = await settle(folderId);
    expect(folder).toMatchObject({
      name: 'shot010 [Make Directories]',
      plugin: 'MakeDirectories',
      regions: ['us-west-2'],
      state: 'queued',
    });
    expect(folder.pluginInfo).toMatchObject({
      directories: ['/gfs/show/shot010'],
      gfs: 'simulated',
      gfsRoot: '/tmp/sim',
    });
    // Nothing of the render job can be dispatched until the folder job is done.
    await store.registerWorker(
      workerRegistrationSchema.parse({
        name: 'w1',
        region: 'us-west-2',
        slots: 4,
        capabilities: { cpus: 1, memoryMb: 1, os: 'linux' },
      }),
    );
    const claims = [];
    for (let t = await store.claimTask('w1'); t; t = await store.claimTask('w1')) claims.push(t);
    expect(claims.map((c) => c.jobId).sort()).toEqual([earlier.id, folder.id].sort());
    for (const c of claims)
      await store.reportTask('w1', {
        lease: c.lease,
        outcome: 'completed',
        exitCode: 0,
        message: '',
      });
    expect((await store.fetchJob(render.id))?.state).toBe('queued');
  });

  it.each(['../../etc', 'sim', '/tmp/sim/../../etc', '/tmp/\u0000sim'])(
    'refuses gfsRoot %j and keeps the configuration it had',
    async (gfsRoot) => {
      await expect(host.configure('gfs-sync', { config: { gfsRoot } })).rejects.toMatchObject({
        code: 'invalid_input',
        field: 'config.gfsRoot',
      });
      expect(host.show('gfs-sync').config.gfsRoot).toBe('/tmp/sim');
    },
  );

  it('ignores jobs without output directories and its own folder jobs', async () => {
    const plain = await submit({ name: 'plain' });
    expect((await settle(plain.id)).dependencies).toEqual([]);
    const own = await submit({
      name: 'own',
      outputDirectories: ['/gfs/x'],
      extraInfo: { HS_PLUGIN_GENERATED: 'True' },
    });
    expect((await settle(own.id)).dependencies).toEqual([]);
  });
});
