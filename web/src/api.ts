/**
 * The monitor's HTTP client: the manager's own API, same origin, called through the route
 * contract (`src/api/`), the same declarations the server is built from. Only types come
 * from `src/core`; nothing of the server is bundled.
 */
import './zod-jitless.js';
import {
  requestOf,
  type RouteDef,
  type RouteInput,
  type RouteReply,
} from '../../src/api/contract.js';
import type { ErrorReply, LatestOutputReply, TaskLogReply } from '../../src/api/replies.js';
import { routes } from '../../src/api/routes.js';
import type { JobAction, JobChanges, JobSubmissionInput } from '../../src/core/job-spec.js';
import type { ConfigValue, PluginState } from '../../src/core/plugin-config.js';
import type { EventType, FarmEvent, Job, Task, Worker } from '../../src/core/types.js';
import type { Product, Version } from '../../src/core/versions.js';
import type { FleetChanges, FleetDecision } from '../../src/core/fleet.js';

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
export type { Product, Version, VersionStatus } from '../../src/core/versions.js';
export type { ReplicationReply, SiteReplication } from '../../src/core/api.js';
export type { FleetChanges, FleetDecision, FleetMachine } from '../../src/core/fleet.js';
/** `GET /fleets`: the fleets with their status, the work no fleet may run, the scaler. */
export type FleetListReply = RouteReply<typeof routes.listFleets>;
export type FleetView = FleetListReply['fleets'][number];
export type FleetDetailReply = RouteReply<typeof routes.getFleet>;
import type { ReplicationReply } from '../../src/core/api.js';

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

/**
 * Calls one route of the manager's route contract (`src/api/routes.ts`): the method, the
 * path and how parameters are spelled come from its declaration, never from here.
 */
async function call<D extends RouteDef>(def: D, input: RouteInput<D>): Promise<RouteReply<D>> {
  const r = requestOf(def, input);
  const query = new URLSearchParams(r.query).toString();
  const headers: Record<string, string> = {};
  if (r.body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(query ? `${r.path}?${query}` : r.path, {
    method: r.method,
    headers,
    body: r.body === undefined ? null : JSON.stringify(r.body),
  });
  if (res.status === 401) authNeeded();
  const text = await res.text();
  const data: unknown = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    const err = (data as Partial<ErrorReply> | undefined)?.error;
    throw new ApiError(
      res.status,
      err?.code ?? 'http_error',
      err?.message ?? `${r.method} ${r.path}: HTTP ${res.status}`,
      err?.field,
    );
  }
  return data as RouteReply<D>;
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

export const api = {
  whoami: () => call(routes.whoami, {}),
  listJobs: (all = false): Promise<Job[]> =>
    allPages(async (offset, limit) => {
      const query = { offset, limit, all: all ? ('true' as const) : undefined };
      return (await call(routes.listJobs, { query })).jobs;
    }),
  getJob: async (id: string): Promise<Job> => (await call(routes.getJob, { params: { id } })).job,
  submitJob: async (input: JobSubmissionInput): Promise<Job> =>
    (await call(routes.submitJob, { body: input })).job,
  jobAction: async (id: string, action: JobAction): Promise<Job> =>
    (await call(routes.jobAction, { params: { id }, body: { action } })).job,
  updateJob: async (id: string, changes: JobChanges): Promise<Job> =>
    (await call(routes.updateJob, { params: { id }, body: changes })).job,
  listTasks: async (id: string, offset = 0, limit = 1000): Promise<Task[]> =>
    (await call(routes.listTasks, { params: { id }, query: { offset, limit } })).tasks,
  allTasks: (id: string): Promise<Task[]> =>
    allPages((offset, limit) => api.listTasks(id, offset, limit)),
  requeueTasks: async (id: string, tasks: number[]): Promise<Task[]> =>
    (await call(routes.requeueTasks, { params: { id }, body: { tasks } })).tasks,
  taskLog: (id: string, index: number, after?: number, attempt?: number): Promise<TaskLogReply> =>
    call(routes.taskLog, { params: { id, index }, query: { after, attempt } }),
  replication: (): Promise<ReplicationReply> => call(routes.replication, {}),
  latestOutput: (id: string): Promise<LatestOutputReply> =>
    call(routes.latestOutput, { params: { id } }),
  /** An image's address for an `<img>`: `v` changes when the file does (cache busting). */
  outputUrl: (id: string, directory: number, name: string, version: number): string => {
    const r = requestOf(routes.outputImage, { params: { id, directory, name } });
    return withToken(`${r.path}?v=${Math.floor(version)}`);
  },
  listWorkers: async (): Promise<Worker[]> => (await call(routes.listWorkers, {})).workers,
  setWorkerEnabled: async (name: string, enabled: boolean): Promise<Worker> =>
    (await call(routes.setWorkerEnabled, { params: { name }, body: { enabled } })).worker,
  listPlugins: async () => (await call(routes.listPlugins, {})).plugins,
  configurePlugin: async (
    name: string,
    changes: { state?: PluginState; config?: Record<string, ConfigValue> },
  ) => (await call(routes.configurePlugin, { params: { name }, body: changes })).plugin,
  listLimits: async () => (await call(routes.listLimits, {})).limits,
  listEvents: async (query: {
    after?: number;
    limit?: number;
    types?: EventType[];
    job?: string;
  }): Promise<FarmEvent[]> =>
    (
      await call(routes.listEvents, {
        query: {
          after: query.after,
          limit: query.limit,
          type: query.types?.join(','),
          job: query.job,
        },
      })
    ).events,
  listProducts: async (): Promise<Product[]> =>
    (await call(routes.listProducts, { query: {} })).products,
  /** Newest first; approved only unless `all`. */
  listVersions: async (query: { product?: string; all?: boolean }): Promise<Version[]> =>
    (
      await call(routes.listVersions, {
        query: { product: query.product, all: query.all ? 'true' : 'false' },
      })
    ).versions,
  reviewVersion: async (
    id: string,
    decision: 'approve' | 'reject',
    comment = '',
  ): Promise<Version> =>
    (
      await call(decision === 'approve' ? routes.approveVersion : routes.rejectVersion, {
        params: { id },
        body: { comment },
      })
    ).version,
  /**
   * A version's thumbnail, review movie (H.264 MP4) or its VP9 WebM fallback, for `<img>` /
   * `<video>` (`?token=`; `v` changes with the version, so a remade movie is not cached).
   */
  versionMediaUrl: (
    id: string,
    kind: 'thumbnail' | 'movie' | 'webm',
    updatedAt: number,
  ): string => {
    const r =
      kind === 'thumbnail'
        ? requestOf(routes.versionThumbnail, { params: { id }, query: {} })
        : requestOf(routes.versionMovie, { params: { id }, query: {} });
    const format = kind === 'webm' ? '&format=webm' : '';
    return withToken(`${r.path}?v=${Math.floor(updatedAt)}${format}`);
  },
  listFleets: (): Promise<FleetListReply> => call(routes.listFleets, {}),
  getFleet: (name: string): Promise<FleetDetailReply> =>
    call(routes.getFleet, { params: { name } }),
  /** The scaler's decisions for a fleet, oldest first (demand, capacity, target over time). */
  fleetHistory: async (name: string, since?: number, limit = 500): Promise<FleetDecision[]> =>
    (await call(routes.fleetHistory, { params: { name }, query: { since, limit } })).decisions,
  updateFleet: async (name: string, changes: FleetChanges) =>
    (await call(routes.updateFleet, { params: { name }, body: changes })).fleet,
  /** The live event stream's address (an EventSource cannot set headers: `?token=`). */
  eventStreamUrl: (after?: number): string => {
    const r = requestOf(routes.eventStream, { query: { after } });
    return withToken(r.query.after ? `${r.path}?after=${r.query.after}` : r.path);
  },
};
