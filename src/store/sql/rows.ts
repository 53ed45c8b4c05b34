import type { Selectable } from 'kysely';
import { parseFrameList } from '../../core/frames.js';
import type { JobState, TaskState, OnCompleteAction } from '../../core/job-spec.js';
import type {
  FarmEvent,
  EventType,
  Job,
  Task,
  TaskCounts,
  Worker,
  WorkerState,
} from '../../core/types.js';
import type { EventsTable, JobsTable, TasksTable, TokensTable, WorkersTable } from './schema.js';
import type { Role, TokenInfo } from '../../core/auth.js';

/** Row ↔ domain mapping. PostgreSQL returns bigint columns as strings: `num` folds both. */
export function num(v: number | string | bigint | null): number {
  return v === null ? 0 : Number(v);
}
function numOrNull(v: number | string | bigint | null): number | null {
  return v === null ? null : Number(v);
}

export function json<T>(text: string): T {
  return JSON.parse(text) as T;
}

/** A job's task counters, kept on the job row so lists never scan tasks. */
export function countsOf(row: Selectable<JobsTable>): TaskCounts {
  return {
    pending: num(row.n_pending),
    queued: num(row.n_queued),
    rendering: num(row.n_rendering),
    completed: num(row.n_completed),
    failed: num(row.n_failed),
    suspended: num(row.n_suspended),
  };
}

export function jobFromRow(row: Selectable<JobsTable>, badWorkers: string[] = []): Job {
  return {
    id: row.id,
    name: row.name,
    batchName: row.batch_name,
    user: row.user_name,
    machineName: row.machine_name,
    department: row.department,
    comment: row.comment,
    plugin: row.plugin,
    pluginInfo: json(row.plugin_info),
    frames: row.frames,
    chunkSize: num(row.chunk_size),
    priority: num(row.priority),
    pool: row.pool,
    secondaryPool: row.secondary_pool,
    group: row.grp,
    machineLimit: num(row.machine_limit),
    allowList: json(row.allow_list),
    denyList: json(row.deny_list),
    limits: json(row.limits),
    dependencies: [],
    frameDependent: num(row.frame_dependent) === 1,
    resumeOnFailedDependencies: num(row.resume_on_failed_deps) === 1,
    resumeOnDeletedDependencies: num(row.resume_on_deleted_deps) === 1,
    regions: json(row.regions),
    outputDirectories: json(row.output_dirs),
    outputFilenames: json(row.output_files),
    extraInfo: json(row.extra_info),
    environment: json(row.environment),
    initialState: row.initial_state as 'queued' | 'suspended',
    taskTimeoutSeconds: num(row.task_timeout_s),
    taskRetries: num(row.task_retries),
    jobErrorLimit: num(row.job_error_limit),
    badWorkerErrors: num(row.bad_worker_errors),
    onComplete: row.on_complete as OnCompleteAction,
    eventOptIns: json(row.event_opt_ins),
    state: row.state as JobState,
    pendingReason: row.pending_reason,
    frameCount: num(row.frame_count),
    taskCount: num(row.task_count),
    counts: countsOf(row),
    errorCount: num(row.error_count),
    badWorkers,
    heldFor: row.held_for === '' ? [] : row.held_for.split(','),
    pluginData: json(row.plugin_data),
    submittedAt: num(row.submitted_at),
    startedAt: numOrNull(row.started_at),
    finishedAt: numOrNull(row.finished_at),
  };
}

export function taskFromRow(row: Selectable<TasksTable>): Task {
  return {
    jobId: row.job_id,
    index: num(row.idx),
    frames: parseFrameList(row.frames),
    state: row.state as TaskState,
    worker: row.worker,
    attempt: num(row.attempt),
    errorCount: num(row.error_count),
    progress: Number(row.progress),
    status: row.status,
    startedAt: numOrNull(row.started_at),
    finishedAt: numOrNull(row.finished_at),
  };
}

export function workerFromRow(row: Selectable<WorkersTable>, runningTasks: string[]): Worker {
  const enabled = num(row.enabled) === 1;
  return {
    name: row.name,
    region: row.region,
    pools: json(row.pools),
    groups: json(row.groups),
    slots: num(row.slots),
    capabilities: json(row.capabilities),
    state: (enabled ? row.state : 'disabled') as WorkerState,
    enabled,
    version: row.version,
    apps: json(row.apps),
    runningTasks,
    registeredAt: num(row.registered_at),
    lastSeenAt: num(row.last_seen_at),
  };
}

export function eventFromRow(row: Selectable<EventsTable>): FarmEvent {
  return {
    seq: num(row.seq),
    at: num(row.at),
    type: row.type as EventType,
    jobId: row.job_id,
    taskIndex: numOrNull(row.task_idx),
    worker: row.worker,
    data: json(row.data),
  };
}

export function tokenFromRow(row: Selectable<TokensTable>): TokenInfo {
  return {
    id: row.id,
    name: row.name,
    role: row.role as Role,
    createdAt: num(row.created_at),
    revokedAt: numOrNull(row.revoked_at),
    workers: row.workers,
  };
}
