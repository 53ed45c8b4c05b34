import type { Logger } from 'pino';
import type { JobChanges, JobSubmissionInput } from '../core/job-spec.js';
import type { ConfigEntry, ConfigValues, PluginState } from '../core/plugin-config.js';
import type { FarmEvent, Job, TaskLogChunk } from '../core/types.js';
import type { PathMapping } from '../core/path-mapping.js';
import type { VersionStore } from '../store/version-contract.js';

/**
 * An event plugin: server-side code that reacts to farm events (Deadline's OnJobSubmitted,
 * OnJobFinished, OnSlaveIdle, OnHouseCleaning, …). Handlers run at least once per event: a
 * handler interrupted by a crash runs again after a restart, so write them to be idempotent.
 */
export interface EventPlugin {
  /** Lower-case name, `[a-z0-9-]`; what jobs list in `eventOptIns`. */
  readonly name: string;
  readonly description: string;
  /** The state before anyone configured it (Deadline's plugins start Disabled). */
  readonly defaultState?: PluginState;
  /** Typed configuration entries, validated on save. */
  readonly config: readonly ConfigEntry[];
  readonly handlers: EventHandlers;
}

export interface JobErrorReport {
  taskIndex: number | null;
  worker: string | null;
  attempt: number;
  message: string;
  exitCode: number | null;
}

type JobHandler = (job: Job, ctx: PluginContext) => Promise<void> | void;
type WorkerHandler = (worker: string, ctx: PluginContext) => Promise<void> | void;

export interface EventHandlers {
  /** Runs before the job may render: the job is held until every such handler finished. */
  onJobSubmitted?: JobHandler;
  onJobStarted?: JobHandler;
  onJobFinished?: JobHandler;
  onJobRequeued?: JobHandler;
  onJobFailed?: JobHandler;
  onJobSuspended?: JobHandler;
  onJobResumed?: JobHandler;
  onJobPended?: JobHandler;
  onJobReleased?: JobHandler;
  onJobDeleted?: JobHandler;
  onJobArchived?: JobHandler;
  onJobError?: (job: Job, report: JobErrorReport, ctx: PluginContext) => Promise<void> | void;
  /** Periodic, from the manager's house keeping. */
  onHouseCleaning?: (ctx: PluginContext) => Promise<void> | void;
  onWorkerStarted?: WorkerHandler;
  onWorkerStopped?: WorkerHandler;
  onWorkerIdle?: WorkerHandler;
  onWorkerStalled?: WorkerHandler;
  onWorkerRendering?: (
    worker: string,
    job: Job | undefined,
    ctx: PluginContext,
  ) => Promise<void> | void;
  /** A worker took a task of a job other than the one it last rendered. */
  onWorkerStartingJob?: (worker: string, job: Job, ctx: PluginContext) => Promise<void> | void;
  /**
   * Every event of the log (job, task, worker, version, fleet, …), after the typed handler
   * for it: for plugins that pass events on (`webhook`). A global plugin gets every event;
   * an opt-in plugin only the events of jobs that opt in to it.
   */
  onEvent?: (event: FarmEvent, ctx: PluginContext) => Promise<void> | void;
}

export type HandlerName = keyof EventHandlers;

/** What a plugin may do on the farm. */
export interface PluginFarm {
  fetchJob(id: string): Promise<Job | undefined>;
  /**
   * Submits a job (validated like any submission) that `forJobId` will wait for, in one
   * transaction: the existing dependencies of `forJobId` stay.
   */
  submitPrerequisiteJob(forJobId: string, input: JobSubmissionInput): Promise<Job>;
  updateJob(id: string, changes: JobChanges): Promise<Job>;
  /** Keeps this plugin's data on a job (shown by `drover job` and the API). */
  setJobData(jobId: string, data: unknown): Promise<void>;
  readTaskLog(jobId: string, index: number): Promise<TaskLogChunk[]>;
  /** Submits a job (validated like any submission), e.g. a published version's review job. */
  submitJob(input: JobSubmissionInput): Promise<Job>;
  /** Path-mapping rules (a plugin that reaches a job's files from the manager maps them). */
  listPathMappings(): Promise<PathMapping[]>;
  /** Products and versions (the publish plugin). */
  readonly versions: VersionStore;
}

export interface PluginContext {
  /** The plugin's configuration, every entry present (defaults filled in). */
  config: ConfigValues;
  farm: PluginFarm;
  log: Logger;
}
