/**
 * Drover's domain, in the farm's own words.
 *
 * - job: what a user submits; an application plugin, its settings and a frame list.
 * - task: one schedulable chunk of a job's frames (`chunkSize` frames), numbered from 0.
 * - worker: a render node running the agent; has a region, ordered pools, groups, slots.
 * - lease: the token a worker holds for a claimed task. It changes on every claim, so a late
 *   report from a stalled worker is refused. It expires when heartbeats stop.
 * - limit: a named counter of concurrent use (licences); a job lists the limits it needs.
 * - event: an entry in the store's append-only log, written in the same transaction as the
 *   change it describes; consumers read it from a cursor (`seq`).
 */
import type { JobState, JobSubmission, TaskState } from './job-spec.js';

export type { JobState, TaskState, OnCompleteAction } from './job-spec.js';

/** Counts of a job's tasks by state, kept with the job so lists never scan tasks. */
export interface TaskCounts {
  pending: number;
  queued: number;
  rendering: number;
  completed: number;
  failed: number;
  suspended: number;
}

export interface Job extends JobSubmission {
  id: string;
  state: JobState;
  /** Why a job is pending (`dependencies`, `held by a user`, a plugin's error, …). */
  pendingReason: string;
  /** Frame count and task count as submitted. */
  frameCount: number;
  taskCount: number;
  counts: TaskCounts;
  errorCount: number;
  /** Workers on the job's bad-worker list. */
  badWorkers: string[];
  /** Event plugins whose job-submitted handlers must finish before the job may render. */
  heldFor: string[];
  /** What event plugins recorded on the job, by plugin name (e.g. gfs-sync's folder outcomes). */
  pluginData: Record<string, unknown>;
  submittedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

export interface Task {
  jobId: string;
  index: number;
  frames: number[];
  state: TaskState;
  worker: string | null;
  /** Claims so far; log lines are kept per attempt. */
  attempt: number;
  errorCount: number;
  progress: number;
  status: string;
  startedAt: number | null;
  finishedAt: number | null;
}

export const workerStates = ['idle', 'rendering', 'offline', 'stalled', 'disabled'] as const;
export type WorkerState = (typeof workerStates)[number];

export interface WorkerCapabilities {
  cpus: number;
  memoryMb: number;
  os: string;
  gpus: number;
}

export interface Worker {
  name: string;
  region: string;
  pools: string[];
  groups: string[];
  slots: number;
  capabilities: WorkerCapabilities;
  state: WorkerState;
  enabled: boolean;
  version: string;
  /** Application plugins it offers besides the built-in ones (`--apps-dir`). */
  apps: string[];
  /** Tasks the worker holds now, as `jobId:index`. */
  runningTasks: string[];
  registeredAt: number;
  lastSeenAt: number;
}

/** What a worker receives when it claims a task. */
export interface TaskAssignment {
  lease: string;
  leaseExpiresAt: number;
  jobId: string;
  jobName: string;
  taskIndex: number;
  attempt: number;
  frames: number[];
  plugin: string;
  pluginInfo: JobSubmission['pluginInfo'];
  environment: Record<string, string>;
  outputDirectories: string[];
  outputFilenames: string[];
  taskTimeoutSeconds: number;
}

export const eventTypes = [
  'job.submitted',
  'job.started',
  'job.finished',
  'job.requeued',
  'job.failed',
  'job.suspended',
  'job.resumed',
  'job.pended',
  'job.released',
  'job.deleted',
  'job.archived',
  'job.updated',
  'job.error',
  'task.started',
  'task.completed',
  'task.failed',
  'task.requeued',
  'task.lease_lost',
  'worker.started',
  'worker.stopped',
  'worker.idle',
  'worker.rendering',
  'worker.stalled',
  'worker.updated',
  'house.cleaning',
  // Fleets (issue 12): definitions changed, and the scaler's decisions with their inputs.
  'fleet.changed',
  'fleet.decision',
  'fleet.launched',
  'fleet.draining',
  'fleet.terminated',
  'fleet.error',
  'fleet.paused',
  'task.interrupted',
  // Versions (issue 15): publishing, review media and approval.
  'version.created',
  'version.updated',
  'version.ready',
  'version.incomplete',
  'version.failed',
  'version.approved',
  'version.rejected',
] as const;
export type EventType = (typeof eventTypes)[number];

export interface FarmEvent {
  seq: number;
  at: number;
  type: EventType;
  jobId: string | null;
  taskIndex: number | null;
  worker: string | null;
  data: Record<string, unknown>;
}

export interface LimitUsage {
  name: string;
  /** Most tasks holding the limit at once. */
  max: number;
  inUse: number;
}

export interface TaskLogChunk {
  attempt: number;
  seq: number;
  at: number;
  stream: 'stdout' | 'stderr' | 'system';
  text: string;
}
