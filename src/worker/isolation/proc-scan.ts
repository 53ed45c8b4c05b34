import { readdirSync, readFileSync } from 'node:fs';
import { isLive, procState, spawnTree } from '../process-tree.js';
import {
  newGroupId,
  TASK_GROUP_VARIABLE,
  type GroupRecorder,
  type Isolation,
  type TaskGroupRecord,
  type TaskProcess,
} from './types.js';

/**
 * The Linux fallback when the worker may not create cgroups: a task group is its leader's
 * process group and session, plus every process whose environment carries the group's
 * `DROVER_TASK_GROUP` marker. Descendants that call `setsid` (a daemonizing renderer, a
 * license helper) leave the process group and session but keep the environment they were
 * started with, and `/proc/<pid>/environ` shows it to the same user (and to root). A
 * descendant that re-parents to init is found the same way, which is what
 * `PR_SET_CHILD_SUBREAPER` would give a native agent.
 */

/** How often membership is re-read while waiting for a group to go. */
const POLL_MS = 100;
/** After SIGKILL, how long to keep killing what appears (forks in flight) before giving up. */
const SIGKILL_ROUNDS = 50;

export interface GroupMatch {
  /** The task group's marker (DROVER_TASK_GROUP value). */
  marker?: string;
  /** The leader's process group / session id. */
  pgid?: number;
  /**
   * After a restart the pgid may be a reused number: its members count only when the group
   * is provably the task's (the leader with its recorded start time, or a member with the
   * marker). While the worker runs the task, its leader holds the number and no proof is
   * needed.
   */
  leaderStart?: string;
  proveGroup?: boolean;
}

/** The live processes (never this one) that belong to the group, by pid. */
export function findMembers(match: GroupMatch): number[] {
  if (process.platform !== 'linux') return [];
  const needle =
    match.marker === undefined
      ? undefined
      : Buffer.from(`${TASK_GROUP_VARIABLE}=${match.marker}\0`);
  const marked: number[] = [];
  const grouped: number[] = [];
  let proven = !match.proveGroup;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const state = procState(pid);
    if (!isLive(state)) continue;
    const inGroup =
      match.pgid !== undefined && (state.pgrp === match.pgid || state.session === match.pgid);
    const hasMarker = needle !== undefined && environHas(pid, needle);
    if (hasMarker) marked.push(pid);
    else if (inGroup) grouped.push(pid);
    if (inGroup && (hasMarker || (pid === match.pgid && state.startTime === match.leaderStart))) {
      proven = true;
    }
  }
  return proven ? [...marked, ...grouped] : marked;
}

/** Whether /proc/<pid>/environ holds `needle` (`NAME=value\0`) as a whole entry. */
function environHas(pid: number, needle: Buffer): boolean {
  let environ: Buffer;
  try {
    environ = readFileSync(`/proc/${pid}/environ`);
  } catch {
    return false; // another user's process, or gone
  }
  for (let at = environ.indexOf(needle); at >= 0; at = environ.indexOf(needle, at + 1)) {
    if (at === 0 || environ[at - 1] === 0) return true;
  }
  return false;
}

export function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone, or not ours
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * SIGTERM to every member, then waits up to `graceMs`; then SIGKILLs what is left (and what
 * appears meanwhile) until nothing is. Resolves with every pid it signalled.
 */
export async function killMembers(match: GroupMatch, graceMs: number): Promise<number[]> {
  const seen = new Set<number>();
  let members = findMembers(match);
  if (members.length === 0) return [];
  if (graceMs > 0) {
    members.forEach((p) => seen.add(p));
    signalAll(members, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline) {
      await sleep(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
      members = findMembers(match);
      if (members.length === 0) return [...seen];
    }
  }
  for (let round = 0; round < SIGKILL_ROUNDS && members.length > 0; round++) {
    members.forEach((p) => seen.add(p));
    signalAll(members, 'SIGKILL');
    await sleep(round === 0 ? 10 : POLL_MS);
    members = findMembers(match);
  }
  return [...seen];
}

export function procScanIsolation(recorder: GroupRecorder, why: string): Isolation {
  return {
    mechanism: 'process-group+proc-scan',
    description:
      `process group + /proc scan (${why}; a task's processes are its process group, its ` +
      `session and whatever carries its ${TASK_GROUP_VARIABLE} marker in /proc/<pid>/environ)`,
    spawn(argv, options): TaskProcess {
      const id = newGroupId();
      const record: TaskGroupRecord = { id };
      // Recorded before the process exists: a worker killed right after the spawn still
      // finds the marker.
      recorder.save(record);
      let child;
      try {
        child = spawnTree(argv, {
          env: { ...options.env, [TASK_GROUP_VARIABLE]: id },
          cwd: options.cwd,
        });
      } catch (error) {
        recorder.remove(id);
        throw error;
      }
      if (child.pid !== undefined) {
        record.pgid = child.pid;
        const start = procState(child.pid)?.startTime;
        if (start) record.leaderStart = start;
        recorder.save(record);
      }
      const match: GroupMatch = { marker: id, ...(record.pgid ? { pgid: record.pgid } : {}) };
      let released = false;
      const release = () => {
        if (!released) recorder.remove(id);
        released = true;
        return Promise.resolve();
      };
      return {
        child,
        record,
        async kill({ graceMs }) {
          await killMembers(match, graceMs);
          await release();
        },
        async killLeftovers() {
          await killMembers(match, 0);
          await release();
        },
        release,
      };
    },
  };
}
