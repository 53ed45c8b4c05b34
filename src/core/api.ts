/**
 * The HTTP API's routes and reply shapes, shared by the manager (which serves them) and the
 * typed client (which the worker, the CLI and tests use). Request bodies are the zod schemas
 * in `job-spec.ts` and `worker-protocol.ts`.
 *
 * Every error reply is `{ "error": { "code", "message", "field"? } }` with a 4xx/5xx status:
 * 400 invalid_input, 401 unauthorized, 403 forbidden, 404 not_found, 409 conflict and
 * lease_lost, 413 too_large, 503 unavailable.
 */
import type { HeartbeatReply } from './worker-protocol.js';
import type {
  FarmEvent,
  Job,
  LimitUsage,
  Task,
  TaskAssignment,
  TaskLogChunk,
  Worker,
} from './types.js';
import type { ErrorCode } from './errors.js';
import type { PathMapping } from './path-mapping.js';
import type { PluginView } from './plugin-config.js';

export const API = '/api/v1';

export interface ErrorReply {
  error: { code: ErrorCode; message: string; field?: string };
}

export interface HealthReply {
  ok: boolean;
  version: string;
  store: string;
  /** What the store said when asked (`select 1` answered, or the error). */
  detail: string;
}

/** POST /jobs → 201; GET /jobs/:id; PATCH /jobs/:id; POST /jobs/:id/actions {action}. */
export interface JobReply {
  job: Job;
}
/** GET /jobs?state=a,b&limit=&offset=&all=true (all: archived and deleted too). */
export interface JobListReply {
  jobs: Job[];
}
/** GET /jobs/:id/tasks?offset=&limit=; POST /jobs/:id/tasks/requeue {tasks: number[]}. */
export interface TaskListReply {
  tasks: Task[];
}
/** GET /jobs/:id/tasks/:index/log?attempt=&after= (after: the last chunk seq seen). */
export interface TaskLogReply {
  attempt: number;
  chunks: TaskLogChunk[];
}
/** GET /workers. */
export interface WorkerListReply {
  workers: Worker[];
}
/** GET /workers/:name; PATCH /workers/:name {enabled}. */
export interface WorkerReply {
  worker: Worker;
}
/** POST /workers/register. */
export interface RegisterReply {
  worker: Worker;
  heartbeatIntervalMs: number;
  leaseTtlMs: number;
}
/** POST /workers/:name/heartbeat. */
export type { HeartbeatReply };
/** POST /workers/:name/work (report the finished task and/or claim the next one, long-poll). */
export interface WorkReply {
  /** null when the report was accepted or there was none; otherwise why it was refused. */
  reportError: ErrorReply['error'] | null;
  task: TaskAssignment | null;
}
/** POST /workers/:name/logs → 200 {ok:true}, 409 when the lease is not current. */
export interface OkReply {
  ok: true;
}
/** GET /limits; PUT /limits/:name {max}. */
export interface LimitListReply {
  limits: LimitUsage[];
}
/** GET /events?after=&limit=&type=. */
export interface EventListReply {
  events: FarmEvent[];
}

/** GET /plugins. */
export interface PluginListReply {
  plugins: PluginView[];
}
/** GET /plugins/:name; PATCH /plugins/:name {state?, config?}. */
export interface PluginReply {
  plugin: PluginView;
}
/** GET /paths. */
export interface PathListReply {
  rules: PathMapping[];
}
/** POST /paths {prefix, replacement, region?, os?, caseSensitive?} → 201. */
export interface PathRuleReply {
  rule: PathMapping;
}
/** POST /paths/map {path, region, os?}. */
export interface MapPathReply {
  path: string;
}

/** How far behind one site of the global file system is. */
export interface SiteReplication {
  site: string;
  /** Folders and files written at another site that have not reached this one yet. */
  pending: number;
  /** The age of the oldest of them (ms): the site's replication lag; 0 when caught up. */
  lagMs: number;
  /** How long the latest replication to this site took after the change (ms), if any. */
  lastDelayMs: number | null;
}

/**
 * GET /regions/replication: the replication lag of each site of the GFS the gfs-sync plugin
 * uses (sites are named after regions), or `sites: null` and why when it cannot tell.
 */
export interface ReplicationReply {
  gfs: string;
  sites: SiteReplication[] | null;
  note: string | null;
}

/** GET /jobs/:id/outputs/latest: the newest image in the job's output directories. */
export interface LatestOutputReply {
  /** `directory` indexes `outputDirectories`; fetch it at `/jobs/:id/outputs/:directory/:name`. */
  image: { directory: number; name: string; size: number; modifiedAt: number } | null;
}
