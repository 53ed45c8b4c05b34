import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFarm, until, untilJobState, type TestFarm } from '../farm.js';

const node = process.execPath;
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a farm of real processes', () => {
  let farm: TestFarm;
  beforeEach(async () => {
    farm = await startFarm();
  });
  afterEach(async () => {
    await farm.stop();
  });

  it('renders a 24-frame builtin-render job on two workers into 24 PNG files', async () => {
    farm.startWorker('w1');
    farm.startWorker('w2');
    const out = join(farm.dir, 'renders');
    const job = await farm.client.submitJob({
      name: 'spheres',
      plugin: 'builtin-render',
      pluginInfo: { width: 64, height: 36, samples: 1 },
      frames: '1-24',
      chunkSize: 2,
      outputDirectories: [out],
    });
    const done = await untilJobState(farm.client, job.id, ['completed', 'failed'], 90_000);
    expect(done.state).toBe('completed');
    const pngs = readdirSync(out).filter((f) => f.endsWith('.png'));
    expect(pngs).toHaveLength(24);
    for (const f of pngs) expect(readFileSync(join(out, f)).subarray(0, 8)).toEqual(PNG_MAGIC);
    const tasks = await farm.client.listTasks(job.id);
    expect(new Set(tasks.map((t) => t.worker))).toEqual(new Set(['w1', 'w2']));
    const log = await farm.client.taskLog(job.id, 0);
    expect(log.chunks.map((c) => c.text).join('')).toMatch(/Progress|Saved|Rendering/);
  });

  it('requeues the task of a worker killed with SIGKILL and completes it on the other worker', async () => {
    const w1 = farm.startWorker('w1');
    const marker = join(farm.dir, 'marker');
    mkdirSync(marker);
    const job = await farm.client.submitJob({
      name: 'slow',
      plugin: 'CommandLine',
      pluginInfo: {
        executable: node,
        arguments: [
          '-e',
          'setTimeout(() => require("fs").writeFileSync(process.argv[1], "ok"), 1500)',
          join(marker, 'frame-{start}'),
        ],
      },
      frames: '1',
    });
    await until(
      'the task to render on w1',
      async () => (await farm.client.listTasks(job.id))[0]?.worker === 'w1',
    );
    w1.kill('SIGKILL');
    farm.startWorker('w2');
    const done = await untilJobState(farm.client, job.id, ['completed', 'failed'], 60_000);
    expect(done.state).toBe('completed');
    const [task] = await farm.client.listTasks(job.id);
    expect(task).toMatchObject({ state: 'completed', worker: 'w2', attempt: 2 });
    const requeued = await farm.client.listEvents({ job: job.id, type: 'task.requeued' });
    expect(requeued.length).toBe(1);
    expect(String(requeued[0]!.data.reason)).toMatch(/lease expired|worker stalled/);
  });

  it('kills the running task of a suspended job and starts nothing new', async () => {
    farm.startWorker('w1');
    const pids = join(farm.dir, 'pids');
    mkdirSync(pids);
    const job = await farm.client.submitJob({
      name: 'long',
      plugin: 'CommandLine',
      pluginInfo: {
        executable: node,
        arguments: [
          '-e',
          'require("fs").writeFileSync(process.argv[1], String(process.pid)); setTimeout(() => {}, 60000)',
          join(pids, 'task-{start}'),
        ],
      },
      frames: '1-3',
    });
    const pidFile = join(pids, 'task-1');
    await until(
      'the first task to start',
      () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').length > 0,
    );
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(alive(pid)).toBe(true);
    const suspended = await farm.client.jobAction(job.id, 'suspend');
    expect(suspended.state).toBe('suspended');
    await until('the task process to be killed', () => !alive(pid), 15_000);
    // Nothing else starts while the job is suspended.
    await new Promise((r) => setTimeout(r, 1500));
    expect(readdirSync(pids)).toEqual(['task-1']);
    const after = await farm.client.getJob(job.id);
    expect(after.counts).toMatchObject({ rendering: 0, suspended: 3 });
  });

  it('retries a failing command, then fails the job and keeps every attempt log', async () => {
    farm.startWorker('w1');
    const job = await farm.client.submitJob({
      name: 'broken',
      plugin: 'CommandLine',
      pluginInfo: {
        executable: node,
        arguments: ['-e', 'console.log("about to fail"); process.exit(3)'],
      },
      frames: '1',
      taskRetries: 1,
    });
    const failed = await untilJobState(farm.client, job.id, ['failed', 'completed'], 60_000);
    expect(failed.state).toBe('failed');
    expect(failed.errorCount).toBe(2);
    const [task] = await farm.client.listTasks(job.id);
    expect(task).toMatchObject({ state: 'failed', errorCount: 2, attempt: 2 });
    for (const attempt of [1, 2]) {
      const log = await farm.client.taskLog(job.id, 0, { attempt });
      expect(log.chunks.map((c) => c.text).join('')).toContain('about to fail');
    }
    const errors = await farm.client.listEvents({ job: job.id, type: 'job.error' });
    expect(errors.map((e) => e.data.exitCode)).toEqual([3, 3]);
  });
});
