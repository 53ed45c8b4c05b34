import type { Generated } from 'kysely';
import type { FleetTables } from './schema-fleets.js';
import type { VersionTables } from './schema-versions.js';

/**
 * The store's tables as Kysely sees them. JSON values are kept as text so one schema serves
 * SQLite and PostgreSQL; times are milliseconds since the epoch.
 */
export interface JobsTable {
  id: string;
  name: string;
  batch_name: string;
  user_name: string;
  machine_name: string;
  department: string;
  comment: string;
  plugin: string;
  plugin_info: string;
  frames: string;
  frame_count: number;
  task_count: number;
  chunk_size: number;
  priority: number;
  pool: string;
  secondary_pool: string;
  grp: string;
  machine_limit: number;
  allow_list: string;
  deny_list: string;
  limits: string;
  regions: string;
  frame_dependent: number;
  /** ResumeOnFailedDependencies: 1 = a failed dependency counts as done. */
  resume_on_failed_deps: Generated<number>;
  /** ResumeOnDeletedDependencies: 1 = a dependency deleted before completing counts as done. */
  resume_on_deleted_deps: Generated<number>;
  output_dirs: string;
  output_files: string;
  extra_info: string;
  environment: string;
  initial_state: string;
  task_timeout_s: number;
  task_retries: number;
  job_error_limit: number;
  bad_worker_errors: number;
  on_complete: string;
  event_opt_ins: string;
  state: string;
  pending_reason: string;
  n_pending: number;
  n_queued: number;
  n_rendering: number;
  n_completed: number;
  n_failed: number;
  n_suspended: number;
  error_count: number;
  submitted_at: number;
  started_at: number | null;
  finished_at: number | null;
  /** Event plugins whose job-submitted handlers have not finished (comma list; '' = none). */
  held_for: string;
  /** Data event plugins keep on the job, by plugin name (JSON object). */
  plugin_data: string;
  /** When a user deleted the job (null: not deleted, or deleted by its on-complete action). */
  deleted_at: Generated<number | null>;
  /** When house keeping removed the deleted job's tasks and logs. */
  tasks_purged_at: Generated<number | null>;
}

export interface TasksTable {
  job_id: string;
  idx: number;
  frames: string;
  first_frame: number;
  last_frame: number;
  state: string;
  worker: string | null;
  lease: string | null;
  lease_expires_at: number | null;
  /** Limits this task holds while it renders (JSON list), released when it stops. */
  held_limits: string;
  attempt: number;
  error_count: number;
  progress: number;
  status: string;
  log_bytes: number;
  log_seq: number;
  /** The last log batch number taken for this attempt (see `LogAppend.batch`). */
  log_batch: Generated<number>;
  /** The sequence number of the attempt log's trim marker; 0 = not trimmed (migration 010). */
  log_trim_seq: Generated<number>;
  /** Spot interruptions of this task, apart from its errors (migration 012). */
  interruptions: Generated<number>;
  started_at: number | null;
  finished_at: number | null;
}

export interface JobDependenciesTable {
  job_id: string;
  depends_on: string;
}

export interface JobWorkerErrorsTable {
  job_id: string;
  worker: string;
  errors: number;
}

export interface WorkersTable {
  name: string;
  region: string;
  pools: string;
  groups: string;
  slots: number;
  capabilities: string;
  state: string;
  enabled: number;
  version: string;
  registered_at: number;
  last_seen_at: number;
  /** Application plugins offered besides the built-in ones, a JSON list (migration 015). */
  apps: Generated<string>;
}

export interface LimitsTable {
  name: string;
  max: number;
  in_use: number;
}

export interface TaskLogsTable {
  id: Generated<number>;
  job_id: string;
  idx: number;
  attempt: number;
  seq: number;
  at: number;
  stream: string;
  text: string;
}

/**
 * The event log (`events.ts`). `id` is insertion order; `seq` is the consumers' cursor. On
 * SQLite `seq` is given at INSERT and `id` is a virtual column equal to it. On PostgreSQL
 * `seq` is null until the publisher gives it (reads select `seq is not null`), and a column
 * `xid` (the writing transaction, xid8) exists that only the publisher's SQL uses.
 */
export interface EventsTable {
  id: Generated<number>;
  seq: Generated<number | null>;
  at: number;
  type: string;
  job_id: string | null;
  task_idx: number | null;
  worker: string | null;
  data: string;
}

export interface PluginSettingsTable {
  name: string;
  state: string;
  config: string;
  updated_at: number;
}

export interface EventCursorsTable {
  consumer: string;
  seq: number;
}

export interface PathMappingsTable {
  id: Generated<number>;
  prefix: string;
  replacement: string;
  region: string;
  os: string;
  case_sensitive: number;
}

/** A leader lease: `holder` holds `role` until `expires_at` (ms since the epoch). */
export interface LeasesTable {
  role: string;
  holder: string;
  expires_at: number;
}

export interface TokensTable {
  id: string;
  name: string;
  role: string;
  hash: string;
  created_at: number;
  revoked_at: number | null;
  /** Worker tokens: the worker names they may act as (a pattern, `*` for any). */
  workers: Generated<string>;
}

/** A large job whose tasks are being inserted, batch by batch, before its job row exists. */
export interface JobCreationsTable {
  job_id: string;
  started_at: number;
  /** The last batch's time: a creation silent for long is abandoned (its manager died). */
  touched_at: number;
  abandoned: Generated<number>;
}

/** A submission's `Idempotency-Key` (per principal) and the job it created. */
export interface IdempotencyKeysTable {
  owner: string;
  key: string;
  /** SHA-256 of the submission body: the same key with another body is refused. */
  body_hash: string;
  job_id: string;
  created_at: number;
}

export interface MetaTable {
  key: string;
  value: string;
}

export interface Database extends FleetTables, VersionTables {
  jobs: JobsTable;
  tasks: TasksTable;
  job_dependencies: JobDependenciesTable;
  job_worker_errors: JobWorkerErrorsTable;
  workers: WorkersTable;
  limits: LimitsTable;
  task_logs: TaskLogsTable;
  events: EventsTable;
  meta: MetaTable;
  tokens: TokensTable;
  plugin_settings: PluginSettingsTable;
  event_cursors: EventCursorsTable;
  path_mappings: PathMappingsTable;
  leases: LeasesTable;
  job_creations: JobCreationsTable;
  idempotency_keys: IdempotencyKeysTable;
}
