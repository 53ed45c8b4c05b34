import {
  API,
  type EventListReply,
  type HealthReply,
  type JobListReply,
  type JobReply,
  type LimitListReply,
  type OkReply,
  type RegisterReply,
  type TaskListReply,
  type TaskLogReply,
  type WorkerListReply,
  type WorkerReply,
  type WorkReply,
  type PluginListReply,
  type PluginReply,
  type PathListReply,
  type PathRuleReply,
  type MapPathReply,
} from '../core/api.js';
import type { PathMapping } from '../core/path-mapping.js';
import type { Role, TokenInfo } from '../core/auth.js';
import type { PluginState, PluginView } from '../core/plugin-config.js';
import type { JobAction, JobChanges, JobSubmissionInput } from '../core/job-spec.js';
import type { FarmEvent, Job, LimitUsage, Task, Worker } from '../core/types.js';
import type {
  HeartbeatReply,
  LogAppendInput,
  TaskReportInput,
  WorkerRegistrationInput,
  WorkRequestInput,
} from '../core/worker-protocol.js';
import { Transport, type RequestOptions } from './transport.js';

export type { RequestOptions } from './transport.js';

/**
 * The typed HTTP client of the manager's API (`src/core/api.ts`), used by the worker, the
 * CLI, tests and integrations. Replies that wrap one value (`{job}`, `{jobs}`, …) are
 * unwrapped; the worker-side replies are returned whole.
 *
 * Errors: a 4xx/5xx reply throws a `DroverError` with the manager's code, message and field;
 * a connection failure or timeout throws `DroverError('unavailable', 'cannot reach the
 * manager at URL: …')`.
 */
export interface DroverClientOptions {
  /**
   * The manager's address, or several (managers sharing one PostgreSQL store): when one
   * cannot be reached the next is tried, and the one that answers is used from then on.
   */
  url: string | string[];
  /** Sent as `authorization: Bearer <token>`. */
  token?: string;
  /** Per-request timeout (default 30 s); a long-poll waits `waitMs` longer. */
  timeoutMs?: number;
}

export interface ListJobsOptions {
  state?: string[];
  limit?: number;
  offset?: number;
  /** Include archived and deleted jobs. */
  all?: boolean;
  /** Only this user's jobs. */
  user?: string;
}

export interface ListTasksOptions {
  offset?: number;
  limit?: number;
}

export interface TaskLogOptions {
  /** The attempt to read (default: the latest). */
  attempt?: number;
  /** The last chunk `seq` already seen. */
  after?: number;
  limit?: number;
}

export interface ListEventsOptions {
  /** The last event `seq` already seen. */
  after?: number;
  limit?: number;
  /** One event type or several. */
  type?: string | string[];
  /** Only this job's events. */
  job?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;

const seg = encodeURIComponent;

export class DroverClient {
  readonly #http: Transport;

  constructor(options: DroverClientOptions) {
    const urls = Array.isArray(options.url) ? options.url : [options.url];
    this.#http = new Transport({
      urls,
      token: options.token,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    });
  }

  /** The manager address in use (the one that answered last). */
  get url(): string {
    return this.#http.url;
  }

  // ----- user side -----

  health(options?: RequestOptions): Promise<HealthReply> {
    return this.#http.request<HealthReply>('GET', `${API}/health`, undefined, undefined, options);
  }

  async submitJob(input: JobSubmissionInput, options?: RequestOptions): Promise<Job> {
    const reply = await this.#http.request<JobReply>(
      'POST',
      `${API}/jobs`,
      input,
      undefined,
      options,
    );
    return reply.job;
  }

  async listJobs(query: ListJobsOptions = {}, options?: RequestOptions): Promise<Job[]> {
    const reply = await this.#http.request<JobListReply>(
      'GET',
      `${API}/jobs`,
      undefined,
      {
        state: query.state && query.state.length > 0 ? query.state.join(',') : undefined,
        limit: query.limit,
        offset: query.offset,
        all: query.all ? true : undefined,
        user: query.user || undefined,
      },
      options,
    );
    return reply.jobs;
  }

  async getJob(id: string, options?: RequestOptions): Promise<Job> {
    const reply = await this.#http.request<JobReply>(
      'GET',
      `${API}/jobs/${seg(id)}`,
      undefined,
      undefined,
      options,
    );
    return reply.job;
  }

  async updateJob(
    id: string,
    changes: Partial<JobChanges>,
    options?: RequestOptions,
  ): Promise<Job> {
    const reply = await this.#http.request<JobReply>(
      'PATCH',
      `${API}/jobs/${seg(id)}`,
      changes,
      undefined,
      options,
    );
    return reply.job;
  }

  async jobAction(id: string, action: JobAction, options?: RequestOptions): Promise<Job> {
    const reply = await this.#http.request<JobReply>(
      'POST',
      `${API}/jobs/${seg(id)}/actions`,
      { action },
      undefined,
      options,
    );
    return reply.job;
  }

  async listTasks(
    jobId: string,
    query: ListTasksOptions = {},
    options?: RequestOptions,
  ): Promise<Task[]> {
    const reply = await this.#http.request<TaskListReply>(
      'GET',
      `${API}/jobs/${seg(jobId)}/tasks`,
      undefined,
      { offset: query.offset, limit: query.limit },
      options,
    );
    return reply.tasks;
  }

  async requeueTasks(jobId: string, indexes: number[], options?: RequestOptions): Promise<Task[]> {
    const reply = await this.#http.request<TaskListReply>(
      'POST',
      `${API}/jobs/${seg(jobId)}/tasks/requeue`,
      { tasks: indexes },
      undefined,
      options,
    );
    return reply.tasks;
  }

  taskLog(
    jobId: string,
    index: number,
    query: TaskLogOptions = {},
    options?: RequestOptions,
  ): Promise<TaskLogReply> {
    return this.#http.request<TaskLogReply>(
      'GET',
      `${API}/jobs/${seg(jobId)}/tasks/${seg(String(index))}/log`,
      undefined,
      { attempt: query.attempt, after: query.after, limit: query.limit },
      options,
    );
  }

  async listWorkers(options?: RequestOptions): Promise<Worker[]> {
    const reply = await this.#http.request<WorkerListReply>(
      'GET',
      `${API}/workers`,
      undefined,
      undefined,
      options,
    );
    return reply.workers;
  }

  async getWorker(name: string, options?: RequestOptions): Promise<Worker> {
    const reply = await this.#http.request<WorkerReply>(
      'GET',
      `${API}/workers/${seg(name)}`,
      undefined,
      undefined,
      options,
    );
    return reply.worker;
  }

  async setWorkerEnabled(
    name: string,
    enabled: boolean,
    options?: RequestOptions,
  ): Promise<Worker> {
    const reply = await this.#http.request<WorkerReply>(
      'PATCH',
      `${API}/workers/${seg(name)}`,
      { enabled },
      undefined,
      options,
    );
    return reply.worker;
  }

  async listLimits(options?: RequestOptions): Promise<LimitUsage[]> {
    const reply = await this.#http.request<LimitListReply>(
      'GET',
      `${API}/limits`,
      undefined,
      undefined,
      options,
    );
    return reply.limits;
  }

  async setLimit(name: string, max: number, options?: RequestOptions): Promise<LimitUsage[]> {
    const reply = await this.#http.request<LimitListReply>(
      'PUT',
      `${API}/limits/${seg(name)}`,
      { max },
      undefined,
      options,
    );
    return reply.limits;
  }

  async listEvents(query: ListEventsOptions = {}, options?: RequestOptions): Promise<FarmEvent[]> {
    const type = Array.isArray(query.type) ? query.type.join(',') : query.type;
    const reply = await this.#http.request<EventListReply>(
      'GET',
      `${API}/events`,
      undefined,
      { after: query.after, limit: query.limit, type: type || undefined, job: query.job },
      options,
    );
    return reply.events;
  }

  // ----- event plugins and path mapping -----

  async listPlugins(options?: RequestOptions): Promise<PluginView[]> {
    const reply = await this.#http.request<PluginListReply>(
      'GET',
      `${API}/plugins`,
      undefined,
      undefined,
      options,
    );
    return reply.plugins;
  }

  async getPlugin(name: string, options?: RequestOptions): Promise<PluginView> {
    const reply = await this.#http.request<PluginReply>(
      'GET',
      `${API}/plugins/${seg(name)}`,
      undefined,
      undefined,
      options,
    );
    return reply.plugin;
  }

  async configurePlugin(
    name: string,
    changes: { state?: PluginState; config?: Record<string, string | number | boolean> },
    options?: RequestOptions,
  ): Promise<PluginView> {
    const reply = await this.#http.request<PluginReply>(
      'PATCH',
      `${API}/plugins/${seg(name)}`,
      changes,
      undefined,
      options,
    );
    return reply.plugin;
  }

  async listPathMappings(options?: RequestOptions): Promise<PathMapping[]> {
    const reply = await this.#http.request<PathListReply>(
      'GET',
      `${API}/paths`,
      undefined,
      undefined,
      options,
    );
    return reply.rules;
  }

  async addPathMapping(
    rule: {
      prefix: string;
      replacement: string;
      region?: string;
      os?: string;
      caseSensitive?: boolean;
    },
    options?: RequestOptions,
  ): Promise<PathMapping> {
    const reply = await this.#http.request<PathRuleReply>(
      'POST',
      `${API}/paths`,
      rule,
      undefined,
      options,
    );
    return reply.rule;
  }

  async removePathMapping(id: number, options?: RequestOptions): Promise<void> {
    await this.#http.request<OkReply>(
      'DELETE',
      `${API}/paths/${id}`,
      undefined,
      undefined,
      options,
    );
  }

  async mapPath(
    path: string,
    region: string,
    os?: string,
    options?: RequestOptions,
  ): Promise<string> {
    const reply = await this.#http.request<MapPathReply>(
      'POST',
      `${API}/paths/map`,
      { path, region, ...(os ? { os } : {}) },
      undefined,
      options,
    );
    return reply.path;
  }

  // ----- access tokens (admin) -----

  /** Creates a token; the reply holds its secret, shown this once. */
  createToken(
    name: string,
    role: Role,
    workers?: string,
    options?: RequestOptions,
  ): Promise<{ token: string; info: TokenInfo }> {
    const body = workers === undefined ? { name, role } : { name, role, workers };
    return this.#http.request('POST', `${API}/tokens`, body, undefined, options);
  }

  async listTokens(options?: RequestOptions): Promise<TokenInfo[]> {
    const reply = await this.#http.request<{ tokens: TokenInfo[] }>(
      'GET',
      `${API}/tokens`,
      undefined,
      undefined,
      options,
    );
    return reply.tokens;
  }

  async revokeToken(id: string, options?: RequestOptions): Promise<TokenInfo> {
    const reply = await this.#http.request<{ token: TokenInfo }>(
      'DELETE',
      `${API}/tokens/${seg(id)}`,
      undefined,
      undefined,
      options,
    );
    return reply.token;
  }

  // ----- worker side -----

  registerWorker(reg: WorkerRegistrationInput, options?: RequestOptions): Promise<RegisterReply> {
    return this.#http.request<RegisterReply>(
      'POST',
      `${API}/workers/register`,
      reg,
      undefined,
      options,
    );
  }

  heartbeat(
    name: string,
    hb: { tasks?: { lease: string; progress?: number; status?: string }[] },
    options?: RequestOptions,
  ): Promise<HeartbeatReply> {
    return this.#http.request<HeartbeatReply>(
      'POST',
      `${API}/workers/${seg(name)}/heartbeat`,
      hb,
      undefined,
      options,
    );
  }

  /**
   * Reports the finished task and/or claims the next one. A long-poll: the manager holds the
   * request up to `waitMs` when no work is queued, so the timeout is `waitMs` longer.
   */
  work(name: string, req: WorkRequestInput, options: RequestOptions = {}): Promise<WorkReply> {
    const timeoutMs = options.timeoutMs ?? this.#http.timeoutMs + (req.waitMs ?? 0);
    return this.#http.request<WorkReply>(
      'POST',
      `${API}/workers/${seg(name)}/work`,
      req,
      undefined,
      { ...options, timeoutMs },
    );
  }

  appendLogs(name: string, body: LogAppendInput, options?: RequestOptions): Promise<OkReply> {
    return this.#http.request<OkReply>(
      'POST',
      `${API}/workers/${seg(name)}/logs`,
      body,
      undefined,
      options,
    );
  }

  /** Reports a task without claiming another (shutting down). */
  report(name: string, report: TaskReportInput, options?: RequestOptions): Promise<OkReply> {
    return this.#http.request<OkReply>(
      'POST',
      `${API}/workers/${seg(name)}/report`,
      report,
      undefined,
      options,
    );
  }

  /**
   * Tells the manager the worker has stopped: it goes offline and the manager requeues
   * whatever it still held.
   */
  async workerStopped(name: string, options?: RequestOptions): Promise<Worker> {
    const reply = await this.#http.request<WorkerReply>(
      'POST',
      `${API}/workers/${seg(name)}/stopped`,
      {},
      undefined,
      options,
    );
    return reply.worker;
  }
}
