import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Starting a task's process so that everything it starts can be killed with it, and killing
 * that whole tree. On POSIX the child leads its own process group (`detached`), so one
 * signal to `-pid` reaches its children and grandchildren (a renderer's helper processes)
 * even after the leader has exited. On Windows `taskkill /T` walks the tree.
 */

const isWindows = process.platform === 'win32';

/** How long a tree gets to exit on SIGTERM before it is SIGKILLed. */
export const DEFAULT_KILL_GRACE_MS = 3_000;

export interface SpawnTreeOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Starts argv (never through a shell) as the leader of a new process group. */
export function spawnTree(argv: string[], options: SpawnTreeOptions): ChildProcess {
  const [command, ...args] = argv;
  if (command === undefined || command === '') throw new Error('empty argv');
  return spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    detached: !isWindows,
    windowsHide: true,
    shell: false,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export interface KillTreeOptions {
  /** Time between SIGTERM and SIGKILL (default 3 s). */
  graceMs?: number;
  /** How often to check whether the group is gone during the grace period. */
  pollMs?: number;
}

/**
 * Kills the process tree led by `pid` and resolves when it is gone (POSIX: no process of
 * the group is left; a process that ignores SIGTERM or hangs on exit gets SIGKILL after the
 * grace period). Never throws: a tree that is already gone is fine.
 */
export async function killTree(pid: number, options: KillTreeOptions = {}): Promise<void> {
  if (isWindows) {
    await taskkill(pid);
    return;
  }
  const graceMs = options.graceMs ?? DEFAULT_KILL_GRACE_MS;
  const pollMs = options.pollMs ?? 50;
  if (!signalGroup(pid, 'SIGTERM')) return;
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())));
    if (!groupAlive(pid)) return;
  }
  signalGroup(pid, 'SIGKILL');
}

/**
 * SIGKILLs whatever is left of a group whose leader has exited (a finished task leaves no
 * processes behind to eat the next task's CPU or hold its output pipes open).
 */
export function killLeftovers(pid: number): void {
  if (isWindows) return;
  signalGroup(pid, 'SIGKILL');
}

/** Sends `signal` to the group; false when the group no longer exists. */
export function signalGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: a member changed its credentials; fall back to the leader alone.
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Whether any process of the group is alive. `kill(-pgid, 0)` also counts zombies, and a
 * container's PID 1 may never reap the orphaned ones, so on Linux /proc decides.
 */
function groupAlive(pid: number): boolean {
  if (!signalGroup(pid, 0)) return false;
  if (process.platform !== 'linux') return true;
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const state = procState(entry);
      if (isLive(state) && state.pgrp === pid) return true;
    }
    return false;
  } catch {
    return true;
  }
}

/** What /proc/<pid>/stat says about a process (Linux). */
export interface ProcState {
  /** R, S, D, Z (zombie), X (dead), T, … */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** Clock ticks after boot: with the pid, it names one process (pids are reused). */
  startTime: string;
}

/** A process's state from /proc/<pid>/stat, undefined when it is gone (or not Linux). */
export function procState(pid: number | string): ProcState | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may contain spaces: fields start after the last
    // ')', at field 3 (state); pgrp is field 5, session 6, starttime 22 (proc(5)).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      state: fields[0] ?? '',
      ppid: Number(fields[1]),
      pgrp: Number(fields[2]),
      session: Number(fields[3]),
      startTime: fields[19] ?? '',
    };
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie (a container's PID 1 may never reap orphans). */
export function isLive(state: ProcState | undefined): state is ProcState {
  return state !== undefined && state.state !== 'Z' && state.state !== 'X';
}

function taskkill(pid: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn('taskkill', ['/pid', String(pid), '/T', '/F'], {
      stdio: 'ignore',
      windowsHide: true,
    });
    child.on('error', () => resolve());
    child.on('exit', () => resolve());
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
