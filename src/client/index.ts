import { requestOf, type RouteDef, type RouteInput, type RouteReply } from '../api/contract.js';
import { routes } from '../api/routes.js';
import type { HealthReply, RegisterReply, TaskLogReply, WorkReply } from '../api/replies.js';
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
 * The typed HTTP client of the manager's API, used by the worker, the CLI, tests and
 * integrations. Every call goes through a declaration of the route contract
 * (`src/api/routes.ts`): method, path and parameters come from there, never restated here. Replies that wrap one value (`{job}`, `{jobs}`, …) are
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

  /** Calls one route of the contract with its typed inputs; resolves to its typed reply. */
  call<D extends RouteDef>(
    def: D,
    input: RouteInput<D>,
    options?: RequestOptions,
  ): Promise<RouteReply<D>> {
    const r = requestOf(def, input);
    return this.#http.request<RouteReply<D>>(r.method, r.path, r.body, r.query, options);
  }

  // ----- user side -----

  health(options?: RequestOptions): Promise<HealthReply> {
    return this.call(routes.health, {}, options);
  }

  /** Submits a job; `options.idempotencyKey` makes a retried submission return the first job. */
  async submitJob(input: JobSubmissionInput, options?: RequestOptions): Promise<Job> {
    return (await this.call(routes.submitJob, { body: input }, options)).job;
  }

  async listJobs(query: ListJobsOptions = {}, options?: RequestOptions): Promise<Job[]> {
    const q = {
      state: query.state && query.state.length > 0 ? query.state.join(',') : undefined,
      limit: query.limit,
      offset: query.offset,
      all: query.all ? ('true' as const) : undefined,
      user: query.user || undefined,
    };
    return (await this.call(routes.listJobs, { query: q }, options)).jobs;
  }

  async getJob(id: string, options?: RequestOptions): Promise<Job> {
    return (await this.call(routes.getJob, { params: { id } }, options)).job;
  }

  async updateJob(
    id: string,
    changes: Partial<JobChanges>,
    options?: RequestOptions,
  ): Promise<Job> {
    return (await this.call(routes.updateJob, { params: { id }, body: changes }, options)).job;
  }

  async jobAction(id: string, action: JobAction, options?: RequestOptions): Promise<Job> {
    return (await this.call(routes.jobAction, { params: { id }, body: { action } }, options)).job;
  }

  async listTasks(
    jobId: string,
    query: ListTasksOptions = {},
    options?: RequestOptions,
  ): Promise<Task[]> {
    return (await this.call(routes.listTasks, { params: { id: jobId }, query }, options)).tasks;
  }

  async requeueTasks(jobId: string, indexes: number[], options?: RequestOptions): Promise<Task[]> {
    const input = { params: { id: jobId }, body: { tasks: indexes } };
    return (await this.call(routes.requeueTasks, input, options)).tasks;
  }

  taskLog(
    jobId: string,
    index: number,
    query: TaskLogOptions = {},
    options?: RequestOptions,
  ): Promise<TaskLogReply> {
    return this.call(routes.taskLog, { params: { id: jobId, index }, query }, options);
  }

  async listWorkers(options?: RequestOptions): Promise<Worker[]> {
    return (await this.call(routes.listWorkers, {}, options)).workers;
  }

  async getWorker(name: string, options?: RequestOptions): Promise<Worker> {
    return (await this.call(routes.getWorker, { params: { name } }, options)).worker;
  }

  async setWorkerEnabled(
    name: string,
    enabled: boolean,
    options?: RequestOptions,
  ): Promise<Worker> {
    const input = { params: { name }, body: { enabled } };
    return (await this.call(routes.setWorkerEnabled, input, options)).worker;
  }

  async listLimits(options?: RequestOptions): Promise<LimitUsage[]> {
    return (await this.call(routes.listLimits, {}, options)).limits;
  }

  async setLimit(name: string, max: number, options?: RequestOptions): Promise<LimitUsage[]> {
    return (await this.call(routes.setLimit, { params: { name }, body: { max } }, options)).limits;
  }

  async listEvents(query: ListEventsOptions = {}, options?: RequestOptions): Promise<FarmEvent[]> {
    const type = Array.isArray(query.type) ? query.type.join(',') : query.type;
    const q = { after: query.after, limit: query.limit, type: type || undefined, job: query.job };
    return (await this.call(routes.listEvents, { query: q }, options)).events;
  }

  // ----- event plugins and path mapping -----

  async listPlugins(options?: RequestOptions): Promise<PluginView[]> {
    return (await this.call(routes.listPlugins, {}, options)).plugins;
  }

  async getPlugin(name: string, options?: RequestOptions): Promise<PluginView> {
    return (await this.call(routes.getPlugin, { params: { name } }, options)).plugin;
  }

  async configurePlugin(
    name: string,
    changes: { state?: PluginState; config?: Record<string, string | number | boolean> },
    options?: RequestOptions,
  ): Promise<PluginView> {
    const input = { params: { name }, body: changes };
    return (await this.call(routes.configurePlugin, input, options)).plugin;
  }

  async listPathMappings(options?: RequestOptions): Promise<PathMapping[]> {
    return (await this.call(routes.listPathMappings, {}, options)).rules;
  }

  async addPathMapping(
    rule: RouteInput<typeof routes.addPathMapping>['body'],
    options?: RequestOptions,
  ): Promise<PathMapping> {
    return (await this.call(routes.addPathMapping, { body: rule }, options)).rule;
  }

  async removePathMapping(id: number, options?: RequestOptions): Promise<void> {
    await this.call(routes.removePathMapping, { params: { id } }, options);
  }

  async mapPath(
    path: string,
    region: string,
    os?: RouteInput<typeof routes.mapPath>['body']['os'],
    options?: RequestOptions,
  ): Promise<string> {
    const body = { path, region, ...(os ? { os } : {}) };
    return (await this.call(routes.mapPath, { body }, options)).path;
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
    return this.call(routes.createToken, { body }, options);
  }

  async listTokens(options?: RequestOptions): Promise<TokenInfo[]> {
    return (await this.call(routes.listTokens, {}, options)).tokens;
  }

  async revokeToken(id: string, options?: RequestOptions): Promise<TokenInfo> {
    return (await this.call(routes.revokeToken, { params: { id } }, options)).token;
  }

  // ----- worker side -----

  registerWorker(reg: WorkerRegistrationInput, options?: RequestOptions): Promise<RegisterReply> {
    return this.call(routes.registerWorker, { body: reg }, options);
  }

  heartbeat(
    name: string,
    hb: { tasks?: { lease: string; progress?: number; status?: string }[] },
    options?: RequestOptions,
  ): Promise<HeartbeatReply> {
    return this.call(routes.heartbeat, { params: { name }, body: hb }, options);
  }

  /**
   * Reports the finished task and/or claims the next one. A long-poll: the manager holds the
   * request up to `waitMs` when no work is queued, so the timeout is `waitMs` longer.
   */
  work(name: string, req: WorkRequestInput, options: RequestOptions = {}): Promise<WorkReply> {
    const timeoutMs = options.timeoutMs ?? this.#http.timeoutMs + (req.waitMs ?? 0);
    return this.call(routes.work, { params: { name }, body: req }, { ...options, timeoutMs });
  }

  appendLogs(name: string, body: LogAppendInput, options?: RequestOptions): Promise<{ ok: true }> {
    return this.call(routes.appendLogs, { params: { name }, body }, options);
  }

  /** Reports a task without claiming another (shutting down). */
  report(name: string, report: TaskReportInput, options?: RequestOptions): Promise<{ ok: true }> {
    return this.call(routes.reportTask, { params: { name }, body: report }, options);
  }

  /**
   * Tells the manager the worker has stopped: it goes offline and the manager requeues
   * whatever it still held.
   */
  async workerStopped(name: string, options?: RequestOptions): Promise<Worker> {
    return (await this.call(routes.workerStopped, { params: { name }, body: {} }, options)).worker;
  }
}
