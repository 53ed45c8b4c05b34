import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFarm, until, untilJobState, type TestFarm } from '../farm.js';

/**
 * Task timeouts and processes that will not go away, end to end: a real manager, a real
 * worker process (SIGTERM → SIGKILL grace of 3 s), real process trees.
 */

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie nobody reaps is not a running process.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\S+ \(.*\) [ZX] /.test(stat);
  } catch {
    return true;
  }
}

const pidsIn = (file: string) =>
  existsSync(file) ? readFileSync(file, 'utf8').split(/\s+/).filter(Boolean).map(Number) : [];

describe('task timeouts', () => {
  let farm: TestFarm;
  const strays: number[] = [];
  beforeEach(async () => {
    farm = await startFarm();
  });
  afterEach(async () => {
    for (const pid of strays.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await farm.stop();
  });

  it('kills the whole tree of a timed-out task, SIGKILLing what ignores SIGTERM, and counts an error', async () => {
    farm.startWorker('t1');
    const pids = join(farm.dir, 'pids');
    // The leader and a grandchild both ignore SIGTERM; both write their pid.
    const script =
      'trap "" TERM; sleep 300 & echo $! >> "$1"; echo $$ >> "$1"; echo started; wait; wait';
    const job = await farm.client.submitJob({
      name: 'hangs',
      plugin: 'CommandLine',
      pluginInfo: { executable: '/bin/sh', arguments: ['-c', script, 'hang', pids] },
      frames: '1',
      taskTimeoutSeconds: 2,
      taskRetries: 0,
    });
    await until('both processes to start', () => pidsIn(pids).length === 2);
    for (const pid of pidsIn(pids)) strays.push(pid);
    const failed = await untilJobState(farm.client, job.id, ['failed', 'completed'], 60_000);
    expect(failed.state).toBe('failed');
    expect(failed.errorCount).toBe(1);
    const [task] = await farm.client.listTasks(job.id);
    expect(task).toMatchObject({ state: 'failed', errorCount: 1 });
    const errors = await farm.client.listEvents({ job: job.id, type: 'job.error' });
    expect(errors.map((e) => e.data.message)).toEqual(['task timed out after 2 s']);
    // SIGKILL came after the 3 s grace: nothing of the tree is left.
    await until('the tree to be gone', () => pidsIn(pids).every((pid) => !alive(pid)), 15_000);
    const log = await farm.client.taskLog(job.id, 0);
    expect(log.chunks.map((c) => c.text).join('')).toMatch(/timed out after 2 s: killing it/);
  }, 90_000);

  it('ends a task whose process exited while a grandchild in its own session keeps its output open', async () => {
    farm.startWorker('t2');
    const pids = join(farm.dir, 'pids');
    // `setsid`: the grandchild leaves the task's process group, so only closing the pipes on
    // the worker's side can end the task.
    const script = [
      'const { spawn } = require("child_process");',
      'const g = spawn("sleep", ["120"], { detached: true, stdio: ["ignore", "inherit", "inherit"] });',
      'require("fs").writeFileSync(process.argv[1], String(g.pid));',
      'g.unref(); console.log("leader done");',
    ].join('\n');
    const started = Date.now();
    const job = await farm.client.submitJob({
      name: 'leaves a grandchild',
      plugin: 'CommandLine',
      pluginInfo: { executable: process.execPath, arguments: ['-e', script, pids] },
      frames: '1',
      taskRetries: 0,
    });
    await until('the grandchild to start', () => pidsIn(pids).length === 1);
    strays.push(...pidsIn(pids));
    const done = await untilJobState(farm.client, job.id, ['completed', 'failed'], 60_000);
    expect(done.state).toBe('completed');
    expect(Date.now() - started).toBeLessThan(30_000);
    const log = await farm.client.taskLog(job.id, 0);
    expect(log.chunks.map((c) => c.text).join('')).toContain('leader done');
  }, 90_000);
});
