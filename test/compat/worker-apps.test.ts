import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DroverClient } from '../../src/client/index.js';
import type { Job } from '../../src/core/types.js';
import { startManager, type RunningManager } from '../../src/manager/server.js';
import { CLI, FAST, killProcess, until } from '../farm.js';
import { basic, call, type TextAnswer } from './deadline-http.js';

/**
 * Plugins clients name (issue 13): a job whose Deadline plugin (`MayaBatch`) no worker offers
 * is accepted, waits with a pending reason that says why while a worker of built-in plugins
 * only keeps rendering other work, and renders once a worker that loads `MayaBatch.json` from
 * its `--apps-dir` starts. A real manager (Deadline port on), real `drover worker` processes,
 * a real program run by the plugin file.
 */

const run = promisify(execFile);

let dir: string;
let manager: RunningManager;
let deadline: string;
let adminAuth: string;
let workerToken: string;
const workers: ChildProcess[] = [];

function startWorker(name: string, args: string[] = [], stderr: 'inherit' | 'pipe' = 'inherit') {
  const child = spawn(
    process.execPath,
    [CLI, 'worker', '--manager', manager.url, '--name', name, '--log-level', 'warn', ...args],
    { stdio: ['ignore', 'inherit', stderr], env: { ...process.env, DROVER_TOKEN: workerToken } },
  );
  workers.push(child);
  return child;
}

async function jobOf(id: string): Promise<Job> {
  const job = await manager.farm.store.fetchJob(id);
  if (!job) throw new Error(`no job ${id}`);
  return job;
}

async function untilState(id: string, state: Job['state']): Promise<Job> {
  return until(`job ${id} ${state}`, async () => {
    const job = await jobOf(id);
    if (job.state === 'failed' && state !== 'failed') throw new Error(`job ${id} failed`);
    return job.state === state ? job : undefined;
  });
}

function deadlineCall(method: string, path: string, body?: unknown): Promise<TextAnswer> {
  return call(method, `${deadline}${path}`, body, adminAuth);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'drover-worker-apps-'));
  manager = await startManager({
    dataDir: dir,
    port: 0,
    deadlinePort: 0,
    settings: FAST,
    logger: pino({ level: 'silent' }),
  });
  deadline = manager.deadlineUrl!;
  adminAuth = basic('admin', manager.adminToken!);
  workerToken = (await manager.auth!.createToken('test-workers', 'worker')).secret;
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map(killProcess));
  await manager.close();
});

describe('a Deadline plugin only a worker with an apps folder offers', () => {
  it('waits with a pending reason on a farm of built-in workers, then renders on a worker that offers it', async () => {
    startWorker('plain');
    await until('the plain worker', async () => (await manager.farm.store.listWorkers()).length);

    const out = join(dir, 'renders');
    mkdirSync(out);
    const outFile = join(out, 'maya.txt');
    // Ayon's shape of a Maya render, its plugin kept: MayaBatch.
    const submitted = await deadlineCall('POST', '/api/jobs', {
      JobInfo: {
        Plugin: 'MayaBatch',
        Name: 'sh010_lighting_v001.ma - renderMain',
        Frames: '1001-1003',
        ChunkSize: 10,
        Priority: 90,
        OutputDirectory0: out,
      },
      PluginInfo: {
        SceneFile: '/proj/sh010_lighting_v001.ma',
        OutputFilePath: outFile,
        Version: 2024,
        Camera: null,
      },
      AuxFiles: [],
      IdOnly: true,
    });
    expect(submitted.status, submitted.text).toBe(200);
    const mayaId = submitted.json<{ _id: string }>()._id;

    // The plain worker is claiming: a lower-priority CommandLine job submitted after runs on
    // it, while the MayaBatch job is passed over.
    const probe = await manager.farm.submitJob(
      {
        name: 'probe',
        plugin: 'CommandLine',
        frames: '1',
        priority: 10,
        pluginInfo: { executable: '/bin/sh', arguments: ['-c', 'exit 0'] },
      },
      undefined,
    );
    const probeDone = await untilState(probe.id, 'completed');
    expect(probeDone.state).toBe('completed');
    const waiting = await jobOf(mayaId);
    expect(waiting.state).toBe('queued');
    expect(waiting.counts.queued).toBe(1);

    // It says why: in the native API, `drover job`, and the Deadline API's Details.
    const reason = 'no worker offers plugin MayaBatch';
    const client = new DroverClient({ url: manager.url, token: manager.adminToken! });
    expect((await client.getJob(mayaId)).pendingReason).toBe(reason);
    expect((await client.listJobs()).find((j) => j.id === mayaId)?.pendingReason).toBe(reason);
    const shown = await run(process.execPath, [
      CLI,
      'job',
      mayaId,
      '--url',
      manager.url,
      '--token',
      manager.adminToken!,
    ]);
    expect(shown.stdout).toContain(`queued (${reason})`);
    const details = await deadlineCall('GET', `/api/jobs?JobID=${mayaId}&Details=true`);
    expect(details.json<Record<string, { PendingReason: string }>>()[mayaId]?.PendingReason).toBe(
      reason,
    );

    const plugins = async () => (await deadlineCall('GET', '/api/plugins')).json<string[]>();
    expect(await plugins()).not.toContain('MayaBatch');

    // A worker whose apps folder defines MayaBatch: a real program, tokens from the task's
    // frames and the job's plugin info.
    const apps = join(dir, 'apps');
    mkdirSync(apps);
    writeFileSync(
      join(apps, 'MayaBatch.json'),
      JSON.stringify({
        executable: '/bin/sh',
        arguments: [
          '-c',
          'echo "Progress: 50%"; echo "render $1-$2 $3 $4" > "$5"',
          'Render',
          '{StartFrame}',
          '{EndFrame}',
          '{SceneFile}',
          '{Renderer}',
          '{OutputFilePath}',
        ],
        defaults: { Renderer: 'arnold' },
      }),
    );
    writeFileSync(join(apps, 'README.txt'), 'one <Name>.json per plugin');
    startWorker('maya-node', ['--apps-dir', apps]);
    const done = await untilState(mayaId, 'completed');
    expect(done.state).toBe('completed');
    expect(readFileSync(outFile, 'utf8')).toBe(
      'render 1001-1003 /proj/sh010_lighting_v001.ma arnold\n',
    );
    // Listed too (the manager looks at the workers at most every 2 s).
    await until('MayaBatch in /api/plugins', async () => (await plugins()).includes('MayaBatch'));
    expect(await plugins()).toContain('CommandLine');
    const [task] = await manager.farm.store.listTasks(mayaId, {});
    expect(task?.worker).toBe('maya-node');
    const listed = await manager.farm.store.listWorkers();
    expect(Object.fromEntries(listed.map((w) => [w.name, w.apps]))).toEqual({
      plain: [],
      'maya-node': ['MayaBatch'],
    });
  }, 90_000);

  it('refuses a registration whose plugin list is malformed or too long, naming the field', async () => {
    const worker = new DroverClient({ url: manager.url, token: workerToken });
    const reg = { name: 'odd-node', capabilities: { cpus: 1, memoryMb: 1, os: 'linux' } };
    for (const [apps, field] of [
      [['MayaBatch', 'Maya Batch'], 'apps.1'],
      [['../x'], 'apps.0'],
      [Array.from({ length: 257 }, (_, i) => `P${i}`), 'apps'],
    ] as const) {
      const error = await worker.registerWorker({ ...reg, apps: [...apps] }).then(
        () => undefined,
        (e: unknown) => e as { code?: string; field?: string },
      );
      expect(error).toMatchObject({ code: 'invalid_input', field });
    }
    expect((await manager.farm.store.listWorkers()).map((w) => w.name)).not.toContain('odd-node');
  });

  it('a worker whose apps folder holds a bad file does not start, naming the file and field', async () => {
    const apps = join(dir, 'bad-apps');
    mkdirSync(apps);
    writeFileSync(join(apps, 'Nuke.json'), JSON.stringify({ executable: 'bin/nuke' }));
    const child = startWorker('bad-node', ['--apps-dir', apps], 'pipe');
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((done) => child.once('exit', done));
    expect(code).not.toBe(0);
    expect(stderr).toContain(join(apps, 'Nuke.json'));
    expect(stderr).toContain('executable: "bin/nuke" is a relative path');
    expect((await manager.farm.store.listWorkers()).map((w) => w.name)).not.toContain('bad-node');
  }, 30_000);
});
