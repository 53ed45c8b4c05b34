/**
 * The monitor's HTTP client: the manager's own API (`src/core/api.ts`), same origin. Only
 * types come from `src/core`; nothing of the server is bundled.
 */
import type {
  ErrorReply,
  EventListReply,
  JobListReply,
  JobReply,
  LatestOutputReply,
  LimitListReply,
  PluginListReply,
  PluginReply,
  ReplicationReply,
  TaskListReply,
  TaskLogReply,
  WorkerListReply,
  WorkerReply,
} from '../../src/core/api.js';
import type { JobAction, JobChanges, JobSubmissionInput } from '../../src/core/job-spec.js';
import type { ConfigValue, PluginState } from '../../src/core/plugin-config.js';
import type { EventType, FarmEvent, Job, Task, Worker } from '../../src/core/types.js';

export type {
  ConfigEntry,
  ConfigValue,
  PluginState,
  PluginView,
} from '../../src/core/plugin-config.js';
export type {
  EventType,
  FarmEvent,
  Job,
  JobState,
  Task,
  TaskLogChunk,
  TaskState,
  Worker,
  WorkerState,
} from '../../src/core/types.js';
export type { JobAction } from '../../src/core/job-spec.js';
export type { ReplicationReply, SiteReplication } from '../../src/core/api.js';

export const API = '/api/v1';

/**
 * The access token, when the manager asks for one: opened once as `/?token=drv_…` (then kept
 * in this browser's storage and taken out of the address bar) or pasted into the banner a 401
 * brings up. Requests send it as `Authorization: Bearer`; the event stream and images, which
 * cannot set headers, as `?token=` (the manager accepts it there only).
 */
const TOKEN_KEY = 'drover.token';
function initialToken(): string | null {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    window.localStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete('token');
    window.history.replaceState(null, '', url.pathname + url.search + url.hash);
    return fromUrl;
  }
  return window.localStorage.getItem(TOKEN_KEY);
}
let token = initialToken();
const authWatchers = new Set<() => void>();
/** Set when the manager refused our token (or wanted one): the banner asks for it. */
export const auth = {
  needed: false,
  get token(): string | null {
    return token;
  },
  setToken(next: string): void {
    token = next.trim() || null;
    if (token) window.localStorage.setItem(TOKEN_KEY, token);
    else window.localStorage.removeItem(TOKEN_KEY);
    window.location.reload();
  },
  watch: (fn: () => void): (() => void) => {
    authWatchers.add(fn);
    return () => authWatchers.delete(fn);
  },
};
function authNeeded(): void {
  if (auth.needed) return;
  auth.needed = true;
  for (const fn of authWatchers) fn();
}

/** `?token=` for the URLs the browser fetches by itself (EventSource, <img>). */
export function withToken(url: string): string {
  if (!token) return url;
  return `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

/** An error reply from the manager, with the field at fault when it named one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | undefined,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? null : JSON.stringify(body),
  });
  if (res.status === 401) authNeeded();
  const text = await res.text();
  const data: unknown = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    const err = (data as Partial<ErrorReply> | undefined)?.error;
    throw new ApiError(
      res.status,
      err?.code ?? 'http_error',
      err?.message ?? `${method} ${path}: HTTP ${res.status}`,
      err?.field,
    );
  }
  return data as T;
}

/** Every page of a paged list (the API answers at most 1,000 items a request). */
async function allPages<T>(fetchPage: (offset: number, limit: number) => Promise<T[]>) {
  const out: T[] = [];
  const limit = 1000;
  for (let offset = 0; ; offset += limit) {
    const page = await fetchPage(offset, limit);
    out.push(...page);
    if (page.length < limit) return out;
  }
}

const q = (params: Record<string, string | number | undefined>): string => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') s.set(k, String(v));
  const text = s.toString();
  return text ? `?${text}` : '';
};

export const api = {
  whoami: (): Promise<{ name: string; role: string }> => request('GET', '/whoami'),
  listJobs: (all = false): Promise<Job[]> =>
    allPages(async (offset, limit) => {
      const r = await request<JobListReply>(
        'GET',
        `/jobs${q({ offset, limit, all: all ? 'true' : undefined })}`,
      );
      return r.jobs;
    }),
  getJob: async (id: string): Promise<Job> =>
    (await request<JobReply>('GET', `/jobs/${encodeURIComponent(id)}`)).job,
  submitJob: async (input: JobSubmissionInput): Promise<Job> =>
    (await request<JobReply>('POST', '/jobs', input)).job,
  jobAction: async (id: string, action: JobAction): Promise<Job> =>
    (await request<JobReply>('POST', `/jobs/${encodeURIComponent(id)}/actions`, { action })).job,
  updateJob: async (id: string, changes: JobChanges): Promise<Job> =>
    (await request<JobReply>('PATCH', `/jobs/${encodeURIComponent(id)}`, changes)).job,
  listTasks: async (id: string, offset = 0, limit = 1000): Promise<Task[]> =>
    (
      await request<TaskListReply>(
        'GET',
        `/jobs/${encodeURIComponent(id)}/tasks${q({ offset, limit })}`,
      )
    ).tasks,
  allTasks: (id: string): Promise<Task[]> =>
    allPages((offset, limit) => api.listTasks(id, offset, limit)),
  requeueTasks: async (id: string, tasks: number[]): Promise<Task[]> =>
    (
      await request<TaskListReply>('POST', `/jobs/${encodeURIComponent(id)}/tasks/requeue`, {
        tasks,
      })
    ).tasks,
  taskLog: (id: string, index: number, after?: number, attempt?: number): Promise<TaskLogReply> =>
    request<TaskLogReply>(
      'GET',
      `/jobs/${encodeURIComponent(id)}/tasks/${index}/log${q({ after, attempt })}`,
    ),
  replication: (): Promise<ReplicationReply> =>
    request<ReplicationReply>('GET', '/regions/replication'),
  latestOutput: (id: string): Promise<LatestOutputReply> =>
    request<LatestOutputReply>('GET', `/jobs/${encodeURIComponent(id)}/outputs/latest`),
  outputUrl: (id: string, directory: number, name: string, version: number): string =>
    withToken(
      `${API}/jobs/${encodeURIComponent(id)}/outputs/${directory}/${encodeURIComponent(name)}?v=${Math.floor(version)}`,
    ),
  listWorkers: async (): Promise<Worker[]> =>
    (await request<WorkerListReply>('GET', '/workers')).workers,
  setWorkerEnabled: async (name: string, enabled: boolean): Promise<Worker> =>
    (await request<WorkerReply>('PATCH', `/workers/${encodeURIComponent(name)}`, { enabled }))
      .worker,
  listPlugins: async () => (await request<PluginListReply>('GET', '/plugins')).plugins,
  configurePlugin: async (
    name: string,
    changes: { state?: PluginState; config?: Record<string, ConfigValue> },
  ) =>
    (await request<PluginReply>('PATCH', `/plugins/${encodeURIComponent(name)}`, changes)).plugin,
  listLimits: async () => (await request<LimitListReply>('GET', '/limits')).limits,
  listEvents: async (query: {
    after?: number;
    limit?: number;
    types?: EventType[];
    job?: string;
  }): Promise<FarmEvent[]> =>
    (
      await request<EventListReply>(
        'GET',
        `/events${q({
          after: query.after,
          limit: query.limit,
          type: query.types?.join(','),
          job: query.job,
        })}`,
      )
    ).events,
};
