import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isLive, procState, spawnTree } from '../process-tree.js';
import { findCgroupHome } from './cgroup.js';
import {
  detectIsolation,
  killRecordedGroups,
  type GroupRecorder,
  type IsolationMode,
  type TaskGroupRecord,
} from './index.js';

/**
 * Real processes, real cgroups (where this machine lets the test create them) and the
 * forced fallback: a task's grandchild that calls `setsid` leaves the task's process group
 * and session, which is all the old process-group kill reached.
 */

const linux = process.platform === 'linux';
const cgroupHome = linux ? findCgroupHome() : { ok: false as const, reason: 'not Linux' };

interface Proc {
  pid: number;
  start: string;
}

const strays: Proc[] = [];
afterEach(() => {
  for (const p of strays.splice(0)) if (alive(p)) process.kill(p.pid, 'SIGKILL');
});

function alive(p: Proc): boolean {
  const s = procState(p.pid);
  return isLive(s) && s.startTime === p.start;
}

function recorder(): GroupRecorder & { records: Map<string, TaskGroupRecord> } {
  const records = new Map<string, TaskGroupRecord>();
  return {
    records,
    save: (r) => records.set(r.id, { ...r }),
    remove: (id) => records.delete(id),
  };
}

async function until<T>(what: string, check: () => T | undefined | false, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A task (sh) whose grandchild calls setsid and writes its pid to `file`; the leader then
 * waits (or exits when `leaderExits`). `clearEnv`: the grandchild also empties its
 * environment (`env -i`), taking the task's marker away; `ignoreTerm`: only SIGKILL ends it.
 */
function taskScript(
  file: string,
  o: { leaderExits?: boolean; clearEnv?: boolean; ignoreTerm?: boolean } = {},
) {
  const trap = o.ignoreTerm ? 'trap "" TERM; ' : '';
  const grandchild = `setsid ${o.clearEnv ? 'env -i /bin/sh' : 'sh'} -c '${trap}echo $$ > "$0.tmp" && mv "$0.tmp" "$0"; exec sleep 1000' "$1" &`;
  return ['/bin/sh', '-c', `${grandchild} ${o.leaderExits ? 'exit 0' : 'wait'}`, 'task', file];
}

async function grandchildOf(file: string, leader: number): Promise<Proc> {
  const pid = await until('the grandchild', () =>
    existsSync(file) ? Number(readFileSync(file, 'utf8')) : undefined,
  );
  const state = await until('its state', () => procState(pid));
  const p = { pid, start: state.startTime };
  strays.push(p);
  // The point of the test: it is in neither the leader's process group nor its session.
  expect(state.session).not.toBe(leader);
  expect(state.pgrp).not.toBe(leader);
  return p;
}

function leaderOf(pid: number): Proc {
  const p = { pid, start: procState(pid)!.startTime };
  strays.push(p);
  return p;
}

const modes: { mode: IsolationMode; label: string; run: boolean }[] = [
  { mode: 'cgroup', label: 'cgroup v2', run: cgroupHome.ok },
  { mode: 'process-group', label: 'process group + /proc scan (forced)', run: linux },
];

describe.each(modes)('isolation: $label', ({ mode, run }) => {
  it.runIf(run)('kills a grandchild that called setsid with the task', async () => {
    const rec = recorder();
    const isolation = detectIsolation({ mode, recorder: rec });
    const file = join(mkdtempSync(join(tmpdir(), 'drover-iso-')), 'pid');
    const task = isolation.spawn(taskScript(file), { env: process.env });
    const leader = leaderOf(task.child.pid!);
    const grandchild = await grandchildOf(file, leader.pid);
    expect(rec.records.size).toBe(1);

    await task.kill({ graceMs: 1_000 });
    expect(alive(leader)).toBe(false);
    expect(alive(grandchild)).toBe(false);
    // Released: no record left, and no cgroup.
    expect(rec.records.size).toBe(0);
    if (task.record.cgroup) expect(existsSync(task.record.cgroup)).toBe(false);
  });

  it.runIf(run)('kills what the leader left behind when it exits', async () => {
    const rec = recorder();
    const isolation = detectIsolation({ mode, recorder: rec });
    const file = join(mkdtempSync(join(tmpdir(), 'drover-iso-')), 'pid');
    const task = isolation.spawn(taskScript(file, { leaderExits: true }), { env: process.env });
    const exited = new Promise((r) => task.child.once('exit', r));
    const grandchild = await grandchildOf(file, task.child.pid!);
    await exited;
    expect(alive(grandchild)).toBe(true);

    await task.killLeftovers();
    expect(alive(grandchild)).toBe(false);
    expect(rec.records.size).toBe(0);
  });

  it.runIf(run)('leaves no cgroup or record behind for a program that cannot start', async () => {
    const rec = recorder();
    const isolation = detectIsolation({ mode, recorder: rec });
    const task = isolation.spawn(['/nonexistent/renderer'], { env: process.env });
    const error = await new Promise<Error>((r) => task.child.once('error', r));
    expect(error.message).toMatch(/ENOENT/);
    await task.release();
    expect(rec.records.size).toBe(0);
    if (task.record.cgroup) expect(existsSync(task.record.cgroup)).toBe(false);
  });

  it.runIf(run)('kills the recorded groups of an earlier life of the worker', async () => {
    const rec = recorder();
    const isolation = detectIsolation({ mode, recorder: rec });
    const file = join(mkdtempSync(join(tmpdir(), 'drover-iso-')), 'pid');
    const task = isolation.spawn(taskScript(file), { env: process.env });
    const leader = leaderOf(task.child.pid!);
    const grandchild = await grandchildOf(file, leader.pid);

    // What a new run of the worker reads from the spool: only the records.
    const report = await killRecordedGroups([...rec.records.values()]);
    expect(alive(leader)).toBe(false);
    expect(alive(grandchild)).toBe(false);
    expect(report.pids).toEqual(expect.arrayContaining([leader.pid, grandchild.pid]));
    if (task.record.cgroup) expect(existsSync(task.record.cgroup)).toBe(false);
  });
});

describe.runIf(cgroupHome.ok)('isolation: cgroup v2 only', () => {
  it('auto picks cgroup v2 where the worker may create cgroups', () => {
    const isolation = detectIsolation();
    expect(isolation.mechanism).toBe('cgroup-v2');
    expect(isolation.description).toMatch(/^cgroup v2 \(/);
  });

  it('SIGKILLs a grandchild that left the session, emptied its environment and ignores SIGTERM', async () => {
    const rec = recorder();
    const isolation = detectIsolation({ mode: 'cgroup', recorder: rec });
    const file = join(mkdtempSync(join(tmpdir(), 'drover-iso-')), 'pid');
    const task = isolation.spawn(taskScript(file, { clearEnv: true, ignoreTerm: true }), {
      env: process.env,
    });
    const grandchild = await grandchildOf(file, task.child.pid!);
    expect(readFileSync(`/proc/${grandchild.pid}/environ`, 'utf8')).not.toContain('DROVER');
    await task.kill({ graceMs: 200 });
    expect(alive(grandchild)).toBe(false);
  });
});

describe.runIf(linux)('isolation: process group + /proc scan', () => {
  it('is what --isolation process-group gives, and says so', () => {
    const isolation = detectIsolation({ mode: 'process-group' });
    expect(isolation.mechanism).toBe('process-group+proc-scan');
    expect(isolation.description).toMatch(/^process group \+ \/proc scan \(forced/);
  });

  it('leaves alone a process group whose number was reused after a restart', async () => {
    // A process group that is not the task's, under the number a record names.
    const other = spawnTree(['sleep', '1000'], { env: process.env });
    const p = leaderOf(other.pid!);
    const report = await killRecordedGroups([
      { id: 'gone-long-ago', pgid: p.pid, leaderStart: String(Number(p.start) - 1) },
    ]);
    expect(report.pids).toEqual([]);
    expect(alive(p)).toBe(true);
  });
});
