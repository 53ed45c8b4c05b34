import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { spawnTree } from '../process-tree.js';
import { killMembers, signalAll, sleep } from './proc-scan.js';
import {
  newGroupId,
  TASK_GROUP_VARIABLE,
  type GroupRecorder,
  type Isolation,
  type TaskGroupRecord,
  type TaskProcess,
} from './types.js';

/**
 * cgroup v2 isolation. Each task process gets its own cgroup, a child of the worker's own
 * (`/proc/self/cgroup`, under wherever cgroup2 is mounted: `/sys/fs/cgroup`, or
 * `/sys/fs/cgroup/unified` on a hybrid host). Killing it writes `1` to `cgroup.kill`
 * (Linux 5.14+), which SIGKILLs every process in it at once, whatever session or process
 * group it moved to. Only cgroup.kill is used: no controller needs enabling, so the cgroup
 * v2 "no internal processes" rule does not apply and the worker may stay where it is.
 *
 * Into the cgroup without a race: Node cannot spawn into a cgroup (`CLONE_INTO_CGROUP`), and
 * moving the child after `spawn` returns leaves a window in which it may already have
 * forked. So the worker moves *itself* into the task's cgroup, spawns (the child is born
 * there; `spawn` forks synchronously on this thread) and moves itself back — two writes to
 * `cgroup.procs`, measured 0.25 ms per round trip here. Nothing else of the worker runs in
 * between (one JavaScript thread), so no other process is born in the wrong cgroup.
 *
 * Moving back is checked before every `cgroup.kill`: the worker never kills a cgroup it is
 * in. A task running as the worker's user may write to `cgroup.procs` of the worker's
 * cgroup tree too, so a task that deliberately moves itself out is caught by its
 * DROVER_TASK_GROUP marker instead (the /proc scan of the fallback, after the cgroup kill).
 */

const POLL_MS = 50;
/** How long SIGKILLed processes get to leave the cgroup before it is given up on. */
const KILL_WAIT_MS = 10_000;

export type CgroupHome = { ok: true; dir: string } | { ok: false; reason: string };

/** The worker's own cgroup v2 directory, if it may create task cgroups in it. */
export function findCgroupHome(): CgroupHome {
  const path = ownCgroupPath();
  if (path === undefined)
    return { ok: false, reason: 'no cgroup v2 hierarchy in /proc/self/cgroup' };
  const mount = cgroup2Mount();
  if (!mount) return { ok: false, reason: 'cgroup2 is not mounted' };
  const dir = cgroupDir(mount, path);
  if (dir === undefined) {
    return { ok: false, reason: `the worker's cgroup ${path} is outside the cgroup2 mount` };
  }
  try {
    accessSync(dir, constants.W_OK);
    accessSync(join(dir, 'cgroup.procs'), constants.W_OK);
  } catch {
    return { ok: false, reason: `no write access to the worker's cgroup ${dir}` };
  }
  // Probe what tasks need: a child cgroup with cgroup.kill, and moving into it and back.
  const probe = join(dir, `drover-probe-${newGroupId()}`);
  try {
    mkdirSync(probe);
  } catch (error) {
    return { ok: false, reason: `cannot create a cgroup in ${dir}: ${message(error)}` };
  }
  try {
    if (!existsSync(join(probe, 'cgroup.kill'))) {
      return { ok: false, reason: 'no cgroup.kill (Linux 5.14 or later has it)' };
    }
    try {
      enter(probe);
    } catch (error) {
      return { ok: false, reason: `cannot move processes into ${probe}: ${message(error)}` };
    }
    try {
      enter(dir);
    } catch (error) {
      // Should not happen (it was our cgroup a moment ago): nothing safe to do but say so.
      throw new Error(`moved into ${probe} but cannot move back to ${dir}: ${message(error)}`);
    }
    return { ok: true, dir };
  } finally {
    try {
      rmdirSync(probe);
    } catch {
      // left for a human; it is empty
    }
  }
}

/** Where the cgroup2 file system is mounted (the first mount), from /proc/self/mountinfo. */
function cgroup2Mount(): { point: string; root: string } | undefined {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of info.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right || right.split(' ')[0] !== 'cgroup2') continue;
    const fields = left.split(' ');
    const root = fields[3];
    const point = fields[4];
    if (root && point) return { root: unescapeMount(root), point: unescapeMount(point) };
  }
  return undefined;
}

/** mountinfo escapes space, tab, newline and backslash as octal (`\040`). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Moves this whole process (every thread) into the cgroup at `dir`. */
function enter(dir: string): void {
  writeFileSync(join(dir, 'cgroup.procs'), String(process.pid));
}

/** This process's cgroup v2 path (relative to the hierarchy's root), from /proc/self/cgroup. */
function ownCgroupPath(): string | undefined {
  try {
    return (
      readFileSync('/proc/self/cgroup', 'utf8')
        .split('\n')
        .find((l) => l.startsWith('0::'))
        ?.slice(3) || undefined
    );
  } catch {
    return undefined;
  }
}

/** A cgroup path as a directory under the mount (undefined when the mount does not show it). */
function cgroupDir(mount: { point: string; root: string }, path: string): string | undefined {
  let rel: string;
  if (mount.root === '/') rel = path;
  else if (path === mount.root || path.startsWith(`${mount.root}/`)) {
    rel = path.slice(mount.root.length);
  } else return undefined;
  // No trailing slash (the hierarchy's root is `/`): one spelling per directory.
  return join(mount.point, rel).replace(/(.)\/+$/, '$1');
}

/** Whether this process is in the cgroup at `dir` now. */
function inside(dir: string): boolean {
  const path = ownCgroupPath();
  const mount = cgroup2Mount();
  return path !== undefined && mount !== undefined && cgroupDir(mount, path) === dir;
}

/** Whether any process is in the cgroup or below it; false when it is gone. */
export function populated(dir: string): boolean {
  try {
    return /^populated 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8'));
  } catch {
    return false;
  }
}

/** The pids in the cgroup itself (not its children). */
export function cgroupPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Every pid in the cgroup and its descendants. */
export function allPids(dir: string): number[] {
  const pids = cgroupPids(dir);
  for (const sub of subdirectories(dir)) pids.push(...allPids(join(dir, sub)));
  return pids;
}

function subdirectories(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

/**
 * SIGKILLs everything in the cgroup (and below) with cgroup.kill and waits until it is
 * empty. Refuses to kill the cgroup this process is in. Resolves false when it is not
 * empty in time.
 */
export async function killCgroup(dir: string, home: string | undefined): Promise<boolean> {
  if (!existsSync(dir)) return true;
  if (inside(dir)) {
    // Never: the worker is inside the task's cgroup (a move back failed). Try again.
    if (home === undefined) return false;
    try {
      enter(home);
    } catch {
      return false;
    }
  }
  try {
    writeFileSync(join(dir, 'cgroup.kill'), '1');
  } catch {
    signalAll(allPids(dir), 'SIGKILL');
  }
  const deadline = Date.now() + KILL_WAIT_MS;
  while (populated(dir)) {
    if (Date.now() > deadline) return false;
    await sleep(POLL_MS);
  }
  return true;
}

/** Removes the cgroup and any the task made inside it (each must be empty). */
export async function removeCgroup(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      removeTree(dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') return; // left for a human; its processes are gone
      await sleep(POLL_MS);
    }
  }
}

function removeTree(dir: string): void {
  for (const sub of subdirectories(dir)) removeTree(join(dir, sub));
  rmdirSync(dir);
}

export function cgroupIsolation(home: string, recorder: GroupRecorder): Isolation {
  return {
    mechanism: 'cgroup-v2',
    description:
      `cgroup v2 (one cgroup per task under ${home}, killed with cgroup.kill; what moves ` +
      `itself out is still found by its ${TASK_GROUP_VARIABLE} marker)`,
    spawn(argv, options): TaskProcess {
      const id = newGroupId();
      const dir = join(home, `drover-task-${id}`);
      const record: TaskGroupRecord = { id, cgroup: dir };
      // Recorded before the cgroup exists: a worker killed from here on finds it again.
      recorder.save(record);
      let child;
      try {
        mkdirSync(dir);
        enter(dir);
        try {
          child = spawnTree(argv, {
            env: { ...options.env, [TASK_GROUP_VARIABLE]: id },
            cwd: options.cwd,
          });
        } finally {
          enter(home);
        }
      } catch (error) {
        if (inside(dir)) {
          // Still inside: this worker would be killed with the task. Nothing is safe.
          throw new Error(`the worker is stuck in the task's cgroup ${dir}: ${message(error)}`);
        }
        void killCgroup(dir, home).then(() => removeCgroup(dir));
        recorder.remove(id);
        throw error;
      }
      const match = { marker: id };
      let released: Promise<void> | undefined;
      const release = () => (released ??= removeCgroup(dir).then(() => recorder.remove(id)));
      return {
        child,
        record,
        async kill({ graceMs }) {
          if (graceMs > 0 && populated(dir)) {
            signalAll(allPids(dir), 'SIGTERM');
            const deadline = Date.now() + graceMs;
            while (populated(dir) && Date.now() < deadline) {
              await sleep(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
            }
          }
          await killCgroup(dir, home);
          await killMembers(match, 0);
          await release();
        },
        async killLeftovers() {
          await killCgroup(dir, home);
          await killMembers(match, 0);
          await release();
        },
        release,
      };
    },
  };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
