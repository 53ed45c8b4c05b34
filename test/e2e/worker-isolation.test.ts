import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findCgroupHome } from '../../src/worker/isolation/cgroup.js';
import { CLI, startFarm, until, untilJobState, type TestFarm } from '../farm.js';

/**
 * The worker's isolation, end to end: a real manager, real `drover worker` processes, real
 * task processes. Tasks never see the worker's credentials; a task's grandchild that calls
 * `setsid` dies with the task (suspend, timeout); a worker SIGKILLed mid-task kills what its
 * tasks left running when it starts again, before it registers.
 */

const linux = process.platform === 'linux';
/** What `--isolation auto` uses here (cgroup v2 when this process may create cgroups). */
const cgroupHere = linux && findCgroupHome().ok;

interface Proc {
  pid: number;
  start: string;
}

/** Alive = the same process (pid and start time), not a zombie. */
function alive(p: Proc): boolean {
  try {
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] !== 'Z' && fields[0] !== 'X' && fields[19] === p.start;
  } catch {
    return false;
  }
}

function proc(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return { pid, start: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]! };
  } catch {
    return undefined;
  }
}

let farm: TestFarm;
const strays: Proc[] = [];
beforeEach(async () => {
  farm = await startFarm();
});
afterEach(async () => {
  // Workers stop now (a second SIGTERM): they kill their tasks and hand them back.
  await Promise.all(
    [...farm.workers.values()].map(
      (w) =>
        new Promise<void>((done) => {
          if (w.exitCode !== null || w.signalCode !== null) return done();
          const force = setTimeout(() => w.kill('SIGKILL'), 15_000);
          w.once('exit', () => {
            clearTimeout(force);
            done();
          });
          w.kill('SIGTERM');
          setTimeout(() => w.kill('SIGTERM'), 200);
        }),
    ),
  );
  for (const p of strays.splice(0)) {
    if (alive(p)) process.kill(p.pid, 'SIGKILL');
  }
  await farm.stop();
}, 60_000);

async function fullLog(job: string): Promise<string> {
  const log = await farm.client.taskLog(job, 0, { limit: 1000 });
  return log.chunks.map((c) => c.text).join('');
}

/** A worker process with its output kept (pino JSON lines), environment as given. */
function workerProcess(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): ChildProcess & {
  lines: () => Array<{ msg: string } & Record<string, unknown>>;
  text: () => string;
} {
  const child = spawn(
    process.execPath,
    [CLI, 'worker', '--manager', farm.manager.url, '--name', name, '--log-level', 'info', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  farm.workers.set(`${name}-${farm.workers.size}`, child);
  return Object.assign(child, {
    text: () => out,
    lines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string }),
  });
}

/** The environment without any Drover credentials. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.DROVER_TOKEN;
  delete env.DROVER_TOKEN_FILE;
  return env;
}

describe('credentials never reach tasks', () => {
  it("a task's environment holds neither the worker's token nor its settings", async () => {
    farm.startWorker('env-1'); // DROVER_TOKEN in its environment, as before
    const job = await farm.client.submitJob({
      name: 'print env',
      plugin: 'CommandLine',
      pluginInfo: { executable: '/usr/bin/env', arguments: [] },
      environment: { SHOT: 'sh010' },
      frames: '1',
      taskRetries: 0,
    });
    expect((await untilJobState(farm.client, job.id, ['completed', 'failed'])).state).toBe(
      'completed',
    );
    const log = await fullLog(job.id);
    expect(log).toContain('SHOT=sh010');
    expect(log).toMatch(/^DROVER_WORKER=env-1$/m);
    expect(log).not.toContain(farm.workerToken);
    expect(log).not.toMatch(/^DROVER_TOKEN/m);
    expect(log).not.toMatch(/^DROVER_URL=/m);
  }, 60_000);

  it('--token-file and DROVER_TOKEN_FILE: the worker reads its token from a private file; tasks see neither', async () => {
    const file = join(farm.dir, 'worker.token');
    writeFileSync(file, `${farm.workerToken}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    workerProcess('file-1', ['--token-file', file], cleanEnv());
    workerProcess('file-2', [], { ...cleanEnv(), DROVER_TOKEN_FILE: file });
    await until('both workers to register', async () => {
      const names = (await farm.client.listWorkers()).map((w) => w.name);
      return names.includes('file-1') && names.includes('file-2');
    });
    const job = await farm.client.submitJob({
      name: 'print env twice',
      plugin: 'CommandLine',
      pluginInfo: { executable: '/usr/bin/env', arguments: [] },
      frames: '1-2',
      taskRetries: 0,
    });
    expect((await untilJobState(farm.client, job.id, ['completed', 'failed'])).state).toBe(
      'completed',
    );
    for (const index of [0, 1]) {
      const log = (await farm.client.taskLog(job.id, index, { limit: 1000 })).chunks
        .map((c) => c.text)
        .join('');
      expect(log).toMatch(/^DROVER_WORKER=file-[12]$/m);
      expect(log).not.toContain(farm.workerToken);
      expect(log).not.toContain(file);
    }
  }, 60_000);

  it('refuses a token file others may read, with what to do, and exits 2', async () => {
    const file = join(farm.dir, 'open.token');
    writeFileSync(file, `${farm.workerToken}\n`);
    chmodSync(file, 0o644);
    const child = workerProcess('open-1', ['--token-file', file], cleanEnv());
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(2);
    expect(child.text()).toContain(
      `the token file ${file} may be read or written by others (mode 644): make it private with \`chmod 600 ${file}\``,
    );
    const names = (await farm.client.listWorkers()).map((w) => w.name);
    expect(names).not.toContain('open-1');
  }, 30_000);
});

/**
 * The task: a leader that starts a grandchild in a session of its own (`setsid`), both
 * writing their pid; the grandchild ignores SIGTERM, so only a SIGKILL that reaches it ends
 * it. The leader waits.
 */
function setsidTask(pids: string) {
  const script =
    `setsid sh -c 'trap "" TERM; echo $$ >> "$0"; exec sleep 1000' "$1" & ` +
    `echo $$ >> "$1"; wait`;
  return { executable: '/bin/sh', arguments: ['-c', script, 'task', pids] };
}

async function taskProcesses(pids: string): Promise<Proc[]> {
  const found = await until('the leader and its setsid grandchild', () => {
    if (!existsSync(pids)) return undefined;
    const list = readFileSync(pids, 'utf8').split('\n').filter(Boolean).map(Number);
    if (list.length < 2) return undefined;
    const procs = list.map(proc);
    return procs.every((p) => p !== undefined) ? procs : undefined;
  });
  strays.push(...found);
  return found;
}

const modes = [
  { isolation: 'auto', label: cgroupHere ? 'cgroup v2 (auto)' : 'auto' },
  { isolation: 'process-group', label: 'process group + /proc scan (forced)' },
];

describe.runIf(linux).each(modes)('process trees that cannot escape: $label', ({ isolation }) => {
  it('a setsid grandchild dies with its task on suspend and on timeout', async () => {
    const w = workerProcess('tree-1', ['--isolation', isolation], {
      ...cleanEnv(),
      DROVER_TOKEN: farm.workerToken,
    });
    const suspendPids = join(farm.dir, 'suspend.pids');
    const suspended = await farm.client.submitJob({
      name: 'suspended',
      plugin: 'CommandLine',
      pluginInfo: setsidTask(suspendPids),
      frames: '1',
    });
    const first = await taskProcesses(suspendPids);
    await farm.client.jobAction(suspended.id, 'suspend');
    await until('the suspended task to be gone', () => first.every((p) => !alive(p)), 20_000);

    const timeoutPids = join(farm.dir, 'timeout.pids');
    const timedOut = await farm.client.submitJob({
      name: 'times out',
      plugin: 'CommandLine',
      pluginInfo: setsidTask(timeoutPids),
      frames: '1',
      taskTimeoutSeconds: 2,
      taskRetries: 0,
    });
    const second = await taskProcesses(timeoutPids);
    expect((await untilJobState(farm.client, timedOut.id, ['failed', 'completed'])).state).toBe(
      'failed',
    );
    await until('the timed-out task to be gone', () => second.every((p) => !alive(p)), 20_000);

    const said = w.lines().find((l) => l.msg.startsWith('process isolation: '))?.msg;
    expect(said).toMatch(
      isolation === 'auto' && cgroupHere
        ? /^process isolation: cgroup v2 \(/
        : /process group \+ \/proc scan/,
    );
  }, 90_000);

  it('a worker SIGKILLed mid-task kills what its task left running when it starts again, before it registers', async () => {
    const spool = mkdtempSync(join(tmpdir(), 'drover-spool-'));
    const args = ['--isolation', isolation, '--spool-dir', spool];
    const env = { ...cleanEnv(), DROVER_TOKEN: farm.workerToken };
    const first = workerProcess('crash-1', args, env);
    const pids = join(farm.dir, 'crash.pids');
    await farm.client.submitJob({
      name: 'outlives its worker',
      plugin: 'CommandLine',
      pluginInfo: setsidTask(pids),
      frames: '1',
    });
    const left = await taskProcesses(pids);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    // What used to happen: the task's processes keep running without a worker.
    expect(left.every(alive)).toBe(true);

    const second = workerProcess('crash-1', args, env);
    await until('the worker to register again', () =>
      second.lines().some((l) => l.msg === 'registered'),
    );
    const lines = second.lines();
    const killedAt = lines.findIndex((l) => l.msg.startsWith('killed '));
    const registeredAt = lines.findIndex((l) => l.msg === 'registered');
    expect(killedAt).toBeGreaterThanOrEqual(0);
    expect(killedAt).toBeLessThan(registeredAt);
    expect(lines[killedAt]!.pids).toEqual(expect.arrayContaining(left.map((p) => p.pid)));
    for (const p of left) expect(alive(p)).toBe(false);
  }, 90_000);
});
