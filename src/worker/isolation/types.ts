import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';

/** The shapes shared by the isolation mechanisms (see index.ts). */

export type IsolationMode = 'auto' | 'cgroup' | 'process-group';

export type Mechanism = 'cgroup-v2' | 'process-group+proc-scan' | 'process-group' | 'taskkill';

/** The environment variable that marks every process of one task group. */
export const TASK_GROUP_VARIABLE = 'DROVER_TASK_GROUP';

/** What the spool keeps about a running task group (JSON). */
export interface TaskGroupRecord {
  /** Unique per task process; the value of DROVER_TASK_GROUP in its environment. */
  id: string;
  /** cgroup v2: the task's cgroup directory. */
  cgroup?: string;
  /** The process group (and session) the task's leader started. */
  pgid?: number;
  /** The leader's start time (/proc/<pid>/stat field 22): tells it from a reused pid. */
  leaderStart?: string;
}

/** Where task groups are recorded while they run (the spool); optional. */
export interface GroupRecorder {
  save(record: TaskGroupRecord): void;
  remove(id: string): void;
}

export interface SpawnOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

/** One task process and everything it starts. */
export interface TaskProcess {
  readonly child: ChildProcess;
  readonly record: TaskGroupRecord;
  /**
   * SIGTERM to every process of the group, SIGKILL to what is left after `graceMs`;
   * resolves once nothing of it is left and the group is released. Never throws.
   */
  kill(options: { graceMs: number }): Promise<void>;
  /** The leader has exited: SIGKILLs what it left behind, then releases the group. */
  killLeftovers(): Promise<void>;
  /** Removes the cgroup and the record (the group is empty, or never started). */
  release(): Promise<void>;
}

export interface Isolation {
  readonly mechanism: Mechanism;
  /** For the start-up line: `process isolation: <description>`. */
  readonly description: string;
  /** Starts argv (never through a shell) in a new task group, recorded first. */
  spawn(argv: string[], options: SpawnOptions): TaskProcess;
}

/** A fresh task-group id (file-name and environment safe). */
export function newGroupId(): string {
  return `${process.pid.toString(36)}-${randomBytes(6).toString('hex')}`;
}
