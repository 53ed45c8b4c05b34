import type {
  FarmEvent,
  EventType,
  Job,
  JobState,
  LimitUsage,
  Task,
  TaskAssignment,
  TaskLogChunk,
  Worker,
} from '../core/types.js';
import type { JobAction, JobChanges, JobSubmission } from '../core/job-spec.js';
import type { FleetStore } from './fleet-contract.js';
import type { VersionStore } from './version-contract.js';
import type { PathMapping } from '../core/path-mapping.js';
import type { Role, TokenInfo } from '../core/auth.js';
import type { ConfigValues, PluginState } from '../core/plugin-config.js';
import type {
  Heartbeat,
  HeartbeatReply,
  LogAppend,
  TaskReport,
  WorkerRegistration,
} from '../core/worker-protocol.js';

/**
 * The store contract: the farm's domain operations. It exposes no connection or transaction
 * types; every operation that changes state is one transaction, and the events it causes are
 * appended to the event log in that same transaction. SQLite and PostgreSQL implement it and
 * one conformance suite (`src/store/conformance/`) runs against both.
 *
 * Operations that take no clock read the store's injected clock, so tests control time.
 */
export interface Store {
  /** `sqlite` or `postgres`, for health output. */
  readonly kind: string;
  /** Fleets, their machines and the scaler's decisions (`fleet-contract.ts`). */
  readonly fleets: FleetStore;
  /** Products and versions (`version-contract.ts`). */
  readonly versions: VersionStore;

  // ── jobs ──────────────────────────────────────────────────────────────────
  /** Creates a job and its tasks; `frames` is the parsed, validated frame list. */
  createJob(
    submission: JobSubmission,
    frames: readonly number[],
    options?: CreateJobOptions,
  ): Promise<Job>;
  /**
   * An event plugin's job-submitted handler finished with the job (`failure`: it threw).
   * When every plugin the job was held for has finished, the job is released.
   */
  releaseHold(jobId: string, plugin: string, failure?: string): Promise<Job | undefined>;
  /** Keeps an event plugin's data on a job (shown with the job). */
  setJobPluginData(jobId: string, plugin: string, data: unknown): Promise<void>;
  fetchJob(id: string): Promise<Job | undefined>;
  listJobs(filter: JobFilter): Promise<Job[]>;
  updateJob(id: string, changes: JobChanges): Promise<Job>;
  /** suspend, resume, requeue, fail, delete, archive, pend (hold), release. */
  applyJobAction(id: string, action: JobAction, reason?: string): Promise<Job>;
  listTasks(jobId: string, page: Page): Promise<Task[]>;
  /** Requeues chosen tasks of a job (any state but queued/pending); cancels running ones. */
  requeueTasks(jobId: string, indexes: readonly number[]): Promise<Task[]>;
  /**
   * A command on chosen tasks of a job (Deadline's task commands): `suspend`, `resume`,
   * `complete` (done without rendering), `fail`; the job follows (see `task-commands.ts`).
   * `'all'`: every task of the job. Returns the chosen tasks (at most a page of them).
   */
  /**
   * Brings a deleted job back while its tasks are not yet purged: suspended (completed when
   * every task had completed). Conflict when it is not deleted or its tasks are gone.
   */
  undeleteJob(id: string): Promise<Job>;
  commandTasks(
    jobId: string,
    indexes: readonly number[] | 'all',
    command: TaskCommand,
  ): Promise<Task[]>;
  readTaskLog(
    jobId: string,
    index: number,
    query: LogQuery,
  ): Promise<{ attempt: number; chunks: TaskLogChunk[] }>;

  // ── workers ───────────────────────────────────────────────────────────────
  registerWorker(registration: WorkerRegistration): Promise<Worker>;
  heartbeat(
    name: string,
    heartbeat: Heartbeat,
  ): Promise<Omit<HeartbeatReply, 'heartbeatIntervalMs'>>;
  fetchWorker(name: string): Promise<Worker | undefined>;
  listWorkers(): Promise<Worker[]>;
  setWorkerEnabled(name: string, enabled: boolean): Promise<Worker>;
  /** The worker stopped on purpose: it goes offline and hands back what it still held. */
  markWorkerStopped(name: string): Promise<Worker>;

  // ── dispatch ──────────────────────────────────────────────────────────────
  /** Atomically claims the next task for the worker, or undefined when none is eligible. */
  claimTask(workerName: string): Promise<TaskAssignment | undefined>;
  /** Completes, fails or hands back the task the lease names. Throws lease_lost if not current. */
  reportTask(workerName: string, report: TaskReport): Promise<void>;
  /**
   * A worker's report on its finished task and its claim of the next, in one transaction
   * (one round trip and one commit per task). A refused report (`lease_lost`) is returned,
   * not thrown, and does not stop the claim.
   */
  work(workerName: string, report: TaskReport | undefined, claim: boolean): Promise<WorkResult>;
  /** Appends log chunks and progress for the lease's task. Throws lease_lost if not current. */
  appendTaskLog(workerName: string, append: LogAppend): Promise<void>;

  // ── house keeping ─────────────────────────────────────────────────────────
  /**
   * Requeues tasks whose leases expired and marks workers stalled that stopped heartbeating;
   * returns what it did.
   */
  expireLeases(stallAfterMs: number): Promise<{ requeued: number; stalled: string[] }>;
  /**
   * Clean-up in short transactions of bounded size (at most ≈`maxRows` rows per call):
   * deletes the tasks, task logs and bad-worker records of jobs deleted more than
   * `deletedJobsAfterMs` ago (the job row stays, marked purged); the tasks of creations a
   * manager abandoned mid-way (it died); idempotency keys older than
   * `IDEMPOTENCY_KEY_TTL_MS`. House keeping calls it every round until it finds nothing.
   */
  purge(options: PurgeOptions): Promise<PurgeResult>;

  // ── limits ────────────────────────────────────────────────────────────────
  setLimit(name: string, max: number): Promise<LimitUsage>;
  listLimits(): Promise<LimitUsage[]>;

  // ── event plugins ─────────────────────────────────────────────────────────
  listPluginSettings(): Promise<PluginSettings[]>;
  savePluginSettings(settings: Omit<PluginSettings, 'updatedAt'>): Promise<PluginSettings>;
  /** A consumer's position in the event log (the last seq it handled). */
  fetchCursor(consumer: string): Promise<number | undefined>;
  saveCursor(consumer: string, seq: number): Promise<void>;
  latestEventSeq(): Promise<number>;

  // ── path mapping ──────────────────────────────────────────────────────────
  listPathMappings(): Promise<PathMapping[]>;
  addPathMapping(rule: Omit<PathMapping, 'id'>): Promise<PathMapping>;
  removePathMapping(id: number): Promise<void>;

  // ── access tokens ─────────────────────────────────────────────────────────
  /** Keeps a new token; `hash` is the SHA-256 of its secret (the secret is never stored). */
  createToken(token: {
    name: string;
    role: Role;
    hash: string;
    workers?: string;
  }): Promise<TokenInfo>;
  /** The live (not revoked) token with this hash. */
  findToken(hash: string): Promise<TokenInfo | undefined>;
  listTokens(): Promise<TokenInfo[]>;
  revokeToken(id: string): Promise<TokenInfo>;

  // ── event log ─────────────────────────────────────────────────────────────
  listEvents(query: EventQuery): Promise<FarmEvent[]>;
  /** Appends an event that no other change causes (house cleaning, plugin notes). */
  appendEvent(event: NewEvent): Promise<FarmEvent>;

  // ── several managers ──────────────────────────────────────────────────────
  /**
   * A leader lease: true when `holder` holds `role` after the call (it was free, already
   * `holder`'s and is now renewed, or another holder's lease had expired and is taken over).
   * Managers sharing a database call it every round, e.g. for house keeping or for running
   * one event plugin's consumer on one manager at a time; a holder that stops calling loses
   * the role `ttlMs` later. Times are the store's clock: managers' clocks must agree to well
   * within `ttlMs`.
   */
  tryLead(role: string, holder: string, ttlMs: number): Promise<boolean>;
  /**
   * Listens for notifications from every process sharing the store (PostgreSQL
   * LISTEN/NOTIFY; in process on SQLite); returns the function that stops listening. The
   * store notifies `WORK_CHANNEL` after each committed change that may make work
   * dispatchable, and `SETTINGS_CHANNEL` after each committed change to a plugin's settings,
   * a path mapping, a limit or a token. A notification is a hint: listeners re-read the store, and still poll,
   * since notifications sent while a connection is down are lost.
   */
  onNotify(listener: (channel: string) => void): () => void;
  /** Notifies every listener of every process sharing the store. */
  notify(channel: string): Promise<void>;
  /** Answers a trivial query within a short timeout; `detail` says how or why not. */
  health(): Promise<StoreHealth>;

  close(): Promise<void>;
}

export interface StoreHealth {
  ok: boolean;
  detail: string;
  /**
   * Set while the store answers but cannot do its work: `disk_full` — writes are refused
   * (`insufficient_storage`, HTTP 507) until space is freed and a write succeeds. `ok` is
   * false then too.
   */
  degraded?: 'disk_full';
}

/** The channel the store notifies after a change that may make work dispatchable. */
export const WORK_CHANNEL = 'drover_work';

/**
 * The channel the store notifies after a committed change to a setting every manager caches:
 * an event plugin's state or configuration, a path mapping, a limit, a token (created or
 * revoked). Each manager re-reads (or forgets) what it keeps of them when it hears it, so a
 * change made through one manager is in force on all within a second; they also re-read
 * every few seconds, in case a notification was lost.
 */
export const SETTINGS_CHANNEL = 'drover_settings';

/** Commands on chosen tasks (`Store.commandTasks`). */
export const taskCommands = ['suspend', 'resume', 'complete', 'fail'] as const;
export type TaskCommand = (typeof taskCommands)[number];

export interface CreateJobOptions {
  /** Event plugins whose job-submitted handlers must finish before the job may render. */
  holdFor?: readonly string[];
  /** In the same transaction, make the new job a dependency of this one (a prerequisite). */
  prerequisiteOf?: string;
  /**
   * A submission's idempotency key: when `owner` already submitted with `key` (within
   * `IDEMPOTENCY_KEY_TTL_MS`), no job is created and the first job is returned — waiting for
   * it while its creation is still under way. The same key with another `bodyHash` is refused
   * (conflict). Two concurrent submissions with one key create one job.
   */
  idempotency?: IdempotencyKey;
}

export interface IdempotencyKey {
  /** Whose key (keys of different principals never meet): e.g. the token's id. */
  owner: string;
  key: string;
  /** A hash of the submission as sent. */
  bodyHash: string;
}

/** How long an idempotency key names its job (Stripe's and the IETF draft's 24 hours). */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60_000;

export interface PurgeOptions {
  /** A deleted job's tasks and logs are removed this long after it was deleted. */
  deletedJobsAfterMs: number;
  /** Rows to delete at most in this call (default 10,000). */
  maxRows?: number;
}

export interface PurgeResult {
  /** Tasks deleted: of purged deleted jobs and of abandoned creations. */
  tasks: number;
  logs: number;
  /** Deleted jobs whose tasks are now all gone. */
  jobs: string[];
  /** Abandoned creations cleaned up completely. */
  creations: number;
  keys: number;
  /** True when the row budget ran out before the work did (call again). */
  more: boolean;
}

export interface PluginSettings {
  name: string;
  state: PluginState;
  config: ConfigValues;
  updatedAt: number;
}

export interface WorkResult {
  reportError: { code: string; message: string } | null;
  task: TaskAssignment | undefined;
}

export interface StoreOptions {
  /** Milliseconds since the epoch; injected so tests control time. */
  now?: () => number;
  /** How long a claimed task's lease lasts without a heartbeat. */
  leaseTtlMs?: number;
}

export interface Page {
  offset?: number;
  limit?: number;
}

export interface JobFilter extends Page {
  states?: readonly JobState[];
  /** Include archived and deleted jobs (hidden by default). */
  all?: boolean;
  user?: string;
}

export interface LogQuery {
  /** Defaults to the latest attempt. */
  attempt?: number;
  /** Only chunks after this sequence number (to follow a log). */
  after?: number;
  limit?: number;
}

export interface EventQuery {
  after?: number;
  limit?: number;
  types?: readonly EventType[];
  jobId?: string;
}

export interface NewEvent {
  type: EventType;
  jobId?: string | null;
  taskIndex?: number | null;
  worker?: string | null;
  data?: Record<string, unknown>;
}

export const DEFAULT_LEASE_TTL_MS = 30_000;
export const MAX_PAGE = 1000;
