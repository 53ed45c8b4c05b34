/**
 * Every HTTP route of the manager, declared once: method, path, inputs, reply and the access
 * it needs (see `contract.ts`). The server serves exactly these routes (a route that is not
 * declared here cannot be registered) and the clients call them through these declarations.
 */
import { z } from 'zod';
import { roles, WORKER_PATTERN } from '../core/auth.js';
import { eventTypes } from '../core/types.js';
import { jobActions, jobChangesSchema, jobStates, jobSubmissionSchema } from '../core/job-spec.js';
import { mappingOses } from '../core/path-mapping.js';
import { pluginStates } from '../core/plugin-config.js';
import { text } from '../core/text.js';
import {
  heartbeatSchema,
  logAppendSchema,
  taskReportSchema,
  workRequestSchema,
  workerRegistrationSchema,
} from '../core/worker-protocol.js';
import { route } from './contract.js';
import { fleetRoutes } from './fleet-routes.js';
import { versionRoutes } from './version-routes.js';
import * as r from './replies.js';

// ── shared inputs ──

/** Ids and names in paths: bounded, so a long one is a 400 naming the parameter. */
const id = text().min(1).max(64);
const name = text().min(1).max(128);
const jobId = z.object({ id });
const workerName = z.object({ name });
const commaList = (max: number) =>
  text()
    .max(max)
    .transform((s) => s.split(',').filter(Boolean));
const pageLimit = (max: number, fallback: number) =>
  z.coerce.number().int().min(1).max(max).default(fallback);
const offset = z.coerce.number().int().min(0).max(10_000_000).default(0);
/** The browser's `?token=` on the routes that take one (see `RouteDef.tokenInQuery`). */
const queryToken = text().max(200).optional();

const limitName = text()
  .min(1)
  .max(128)
  .regex(/^[^\s,]+$/, 'must not contain spaces or commas');
const pathPrefix = text().min(1).max(1024);

// ── the routes ──

export const routes = {
  // Farm
  health: route({
    name: 'health',
    method: 'GET',
    path: '/health',
    summary: 'Is the manager up and its store reachable (503 when not)',
    access: 'public',
    reply: r.healthReply,
  }),
  openapi: route({
    name: 'openapi',
    method: 'GET',
    path: '/openapi.json',
    summary: 'This OpenAPI 3.1 document',
    access: 'public',
    reply: z.record(text(), z.unknown()),
  }),
  whoami: route({
    name: 'whoami',
    method: 'GET',
    path: '/whoami',
    summary: 'The name and role of the calling token',
    access: 'read',
    reply: r.whoamiReply,
  }),
  replication: route({
    name: 'replication',
    method: 'GET',
    path: '/regions/replication',
    summary: "Each GFS site's replication lag, through the gfs-sync plugin's GFS",
    access: 'read',
    reply: r.replicationReply,
  }),
  listEvents: route({
    name: 'listEvents',
    method: 'GET',
    path: '/events',
    summary: 'The event log, after a cursor',
    access: 'read',
    query: z.object({
      after: z.coerce.number().int().min(0).default(0),
      limit: pageLimit(1000, 100),
      type: commaList(1000)
        .pipe(z.array(z.enum(eventTypes)))
        .optional(),
      job: id.optional(),
    }),
    reply: r.eventListReply,
  }),
  eventStream: route({
    name: 'eventStream',
    method: 'GET',
    path: '/events/stream',
    summary: 'The event log as Server-Sent Events (resumable with Last-Event-ID)',
    access: 'read',
    tokenInQuery: true,
    query: z.object({
      after: z.coerce.number().int().min(0).optional(),
      token: queryToken,
    }),
    reply: r.opaqueReply,
    replyKind: 'event-stream',
  }),
  listLimits: route({
    name: 'listLimits',
    method: 'GET',
    path: '/limits',
    summary: 'Limits (licence counters) and their use',
    access: 'read',
    reply: r.limitListReply,
  }),
  setLimit: route({
    name: 'setLimit',
    method: 'PUT',
    path: '/limits/:name',
    summary: 'Create a limit or change its maximum',
    access: 'admin',
    params: z.object({ name: limitName }),
    body: z.object({ max: z.number().int().min(0).max(1_000_000) }).strict(),
    reply: r.limitListReply,
  }),

  // Jobs
  submitJob: route({
    name: 'submitJob',
    method: 'POST',
    path: '/jobs',
    summary: 'Submit a job (a user token submits as itself)',
    access: 'user',
    headers: z.object({
      'idempotency-key': text().min(1).max(128).optional().meta({
        description:
          'a retried submission with the same key (same token) returns the first job instead of a new one',
      }),
    }),
    body: jobSubmissionSchema,
    reply: r.jobReply,
    status: 201,
  }),
  listJobs: route({
    name: 'listJobs',
    method: 'GET',
    path: '/jobs',
    summary: 'Jobs, newest first',
    access: 'read',
    query: z.object({
      state: commaList(200)
        .pipe(z.array(z.enum(jobStates)))
        .optional(),
      user: text().max(128).optional(),
      limit: pageLimit(1000, 100),
      offset,
      all: z.enum(['true', 'false']).optional(),
    }),
    reply: r.jobListReply,
  }),
  getJob: route({
    name: 'getJob',
    method: 'GET',
    path: '/jobs/:id',
    summary: 'One job',
    access: 'read',
    params: jobId,
    reply: r.jobReply,
  }),
  updateJob: route({
    name: 'updateJob',
    method: 'PATCH',
    path: '/jobs/:id',
    summary: "Change a job's scheduling fields",
    access: 'user',
    owner: 'job',
    params: jobId,
    body: jobChangesSchema,
    reply: r.jobReply,
  }),
  jobAction: route({
    name: 'jobAction',
    method: 'POST',
    path: '/jobs/:id/actions',
    summary: 'Suspend, resume, requeue, fail, delete, archive, pend or release a job',
    access: 'user',
    owner: 'job',
    params: jobId,
    body: z.object({ action: z.enum(jobActions) }).strict(),
    reply: r.jobReply,
  }),
  listTasks: route({
    name: 'listTasks',
    method: 'GET',
    path: '/jobs/:id/tasks',
    summary: "A job's tasks",
    access: 'read',
    params: jobId,
    query: z.object({ limit: pageLimit(1000, 1000), offset }),
    reply: r.taskListReply,
  }),
  requeueTasks: route({
    name: 'requeueTasks',
    method: 'POST',
    path: '/jobs/:id/tasks/requeue',
    summary: 'Requeue chosen tasks of a job',
    access: 'user',
    owner: 'job',
    params: jobId,
    body: z.object({ tasks: z.array(z.number().int().min(0)).min(1).max(100_000) }).strict(),
    reply: r.taskListReply,
  }),
  taskLog: route({
    name: 'taskLog',
    method: 'GET',
    path: '/jobs/:id/tasks/:index/log',
    summary: "A task attempt's log, after a chunk cursor",
    access: 'read',
    params: jobId.extend({ index: z.coerce.number().int().min(0).max(10_000_000) }),
    query: z.object({
      attempt: z.coerce.number().int().min(1).max(1_000_000).optional(),
      after: z.coerce.number().int().min(0).optional(),
      limit: pageLimit(1000, 1000),
    }),
    reply: r.taskLogReply,
  }),
  latestOutput: route({
    name: 'latestOutput',
    method: 'GET',
    path: '/jobs/:id/outputs/latest',
    summary: "The newest image in a job's output directories",
    access: 'read',
    tokenInQuery: true,
    params: jobId,
    query: z.object({ token: queryToken }),
    reply: r.latestOutputReply,
  }),
  outputImage: route({
    name: 'outputImage',
    method: 'GET',
    path: '/jobs/:id/outputs/:directory/:name',
    summary: "One image from a job's output directory (inside the manager's output roots)",
    access: 'read',
    tokenInQuery: true,
    params: jobId.extend({
      directory: z.coerce.number().int().min(0).max(63),
      name: text()
        .min(1)
        .max(255)
        .refine((n) => !/[/\\]/.test(n) && n !== '.' && n !== '..', 'must be a plain file name'),
    }),
    query: z.object({ token: queryToken }),
    reply: r.opaqueReply,
    replyKind: 'image',
  }),

  // Workers, as the farm sees them
  listWorkers: route({
    name: 'listWorkers',
    method: 'GET',
    path: '/workers',
    summary: 'Render nodes',
    access: 'read',
    reply: r.workerListReply,
  }),
  getWorker: route({
    name: 'getWorker',
    method: 'GET',
    path: '/workers/:name',
    summary: 'One render node',
    access: 'read',
    params: workerName,
    reply: r.workerReply,
  }),
  setWorkerEnabled: route({
    name: 'setWorkerEnabled',
    method: 'PATCH',
    path: '/workers/:name',
    summary: 'Enable or disable a render node',
    access: 'admin',
    params: workerName,
    body: z.object({ enabled: z.boolean() }).strict(),
    reply: r.workerReply,
  }),

  uploadAuxFile: route({
    name: 'uploadAuxFile',
    method: 'POST',
    path: '/aux-files',
    summary:
      'Upload an auxiliary file for a job to submit, in chunks of at most 1 MiB (base64): without `ref` a new file, with it the next chunk at `offset`',
    access: 'user',
    body: z
      .object({
        name: text().min(1).max(255),
        content: text().max(1_500_000),
        ref: text().max(300).optional(),
        offset: z
          .number()
          .int()
          .min(0)
          .max(64 * 1024 * 1024)
          .optional(),
      })
      .strict(),
    reply: r.auxFileReply,
    status: 201,
  }),

  // The worker protocol
  registerWorker: route({
    name: 'registerWorker',
    method: 'POST',
    path: '/workers/register',
    summary: 'A worker starts: register it (as the name in the body)',
    access: 'worker',
    owner: 'worker',
    body: workerRegistrationSchema,
    reply: r.registerReply,
  }),
  heartbeat: route({
    name: 'heartbeat',
    method: 'POST',
    path: '/workers/:name/heartbeat',
    summary: 'Renew the leases a worker holds; learn which it must give up',
    access: 'worker',
    owner: 'worker',
    params: workerName,
    body: heartbeatSchema,
    reply: r.heartbeatReply,
  }),
  work: route({
    name: 'work',
    method: 'POST',
    path: '/workers/:name/work',
    summary: 'Report the finished task and claim the next one (long-poll)',
    access: 'worker',
    owner: 'worker',
    params: workerName,
    body: workRequestSchema,
    reply: r.workReply,
  }),
  reportTask: route({
    name: 'reportTask',
    method: 'POST',
    path: '/workers/:name/report',
    summary: 'Report a task without claiming another',
    access: 'worker',
    owner: 'worker',
    params: workerName,
    body: taskReportSchema,
    reply: r.okReply,
  }),
  appendLogs: route({
    name: 'appendLogs',
    method: 'POST',
    path: '/workers/:name/logs',
    summary: "Append to a leased task's log",
    access: 'worker',
    owner: 'worker',
    params: workerName,
    body: logAppendSchema,
    reply: r.okReply,
  }),
  workerStopped: route({
    name: 'workerStopped',
    method: 'POST',
    path: '/workers/:name/stopped',
    summary: 'A worker stops: it goes offline and what it held is requeued',
    access: 'worker',
    owner: 'worker',
    params: workerName,
    body: z.object({}).strict().optional(),
    reply: r.workerReply,
  }),
  fetchAuxFile: route({
    name: 'fetchAuxFile',
    method: 'GET',
    path: '/workers/:name/aux-files/:job/:index',
    summary:
      'A chunk of an auxiliary file of a job the worker holds a task of (before the task starts)',
    access: 'worker',
    owner: 'worker',
    params: z.object({ name, job: id, index: z.coerce.number().int().min(0).max(63) }),
    query: z.object({
      offset: z.coerce
        .number()
        .int()
        .min(0)
        .max(64 * 1024 * 1024)
        .default(0),
    }),
    reply: r.auxFileChunkReply,
  }),

  // Event plugins and path mapping
  listPlugins: route({
    name: 'listPlugins',
    method: 'GET',
    path: '/plugins',
    summary: 'Event plugins, their state and configuration (passwords masked)',
    access: 'read',
    reply: r.pluginListReply,
  }),
  getPlugin: route({
    name: 'getPlugin',
    method: 'GET',
    path: '/plugins/:name',
    summary: 'One event plugin',
    access: 'read',
    params: z.object({ name }),
    reply: r.pluginReply,
  }),
  configurePlugin: route({
    name: 'configurePlugin',
    method: 'PATCH',
    path: '/plugins/:name',
    summary: "Change an event plugin's state or configuration",
    access: 'admin',
    params: z.object({ name }),
    body: z
      .object({
        state: z.enum(pluginStates).optional(),
        config: z
          .record(text().min(1).max(128), z.union([text().max(65536), z.number(), z.boolean()]))
          .refine((c) => Object.keys(c).length <= 256, 'at most 256 settings')
          .optional(),
      })
      .strict()
      .refine((b) => b.state !== undefined || b.config !== undefined, 'give a state or config'),
    reply: r.pluginReply,
  }),
  listPathMappings: route({
    name: 'listPathMappings',
    method: 'GET',
    path: '/paths',
    summary: 'Path mapping rules',
    access: 'read',
    reply: r.pathListReply,
  }),
  addPathMapping: route({
    name: 'addPathMapping',
    method: 'POST',
    path: '/paths',
    summary: 'Add a path mapping rule',
    access: 'admin',
    body: z
      .object({
        prefix: pathPrefix,
        replacement: pathPrefix,
        region: text().max(128).default(''),
        os: z.union([z.enum(mappingOses), z.literal('')]).default(''),
        caseSensitive: z.boolean().default(true),
      })
      .strict(),
    reply: r.pathRuleReply,
    status: 201,
  }),
  removePathMapping: route({
    name: 'removePathMapping',
    method: 'DELETE',
    path: '/paths/:id',
    summary: 'Remove a path mapping rule',
    access: 'admin',
    params: z.object({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }),
    reply: r.okReply,
  }),
  mapPath: route({
    name: 'mapPath',
    method: 'POST',
    path: '/paths/map',
    summary: 'What a path becomes for a region and OS',
    access: 'read',
    body: z
      .object({
        path: pathPrefix,
        region: text().max(128),
        os: z.enum(mappingOses).default('linux'),
      })
      .strict(),
    reply: r.mapPathReply,
  }),

  // Access tokens
  createToken: route({
    name: 'createToken',
    method: 'POST',
    path: '/tokens',
    summary: 'Create an access token (its secret is in this reply only)',
    access: 'admin',
    body: z
      .object({
        name: text()
          .trim()
          .min(1)
          .max(128)
          .regex(/^[^\s,]+$/, 'must not contain spaces or commas'),
        role: z.enum(roles),
        workers: text()
          .regex(WORKER_PATTERN, 'a worker name or pattern (* for any run of characters)')
          .optional(),
      })
      .strict()
      .refine((b) => b.workers === undefined || b.role === 'worker', {
        path: ['workers'],
        message: 'only worker tokens name the workers they act as',
      }),
    reply: r.tokenCreatedReply,
    status: 201,
  }),
  listTokens: route({
    name: 'listTokens',
    method: 'GET',
    path: '/tokens',
    summary: 'Access tokens (never their secrets)',
    access: 'admin',
    reply: r.tokenListReply,
  }),
  revokeToken: route({
    name: 'revokeToken',
    method: 'DELETE',
    path: '/tokens/:id',
    summary: 'Revoke an access token (within 5 s on every manager, open streams included)',
    access: 'admin',
    params: z.object({ id }),
    reply: r.tokenReply,
  }),

  // Monitoring
  metrics: route({
    name: 'metrics',
    method: 'GET',
    path: '/metrics',
    root: true,
    summary:
      "This manager's metrics in the Prometheus text format: dispatch counters, claim latency, queued tasks, workers by state, the store's connection pool, event-log lag, house keeping",
    access: 'read',
    reply: text(),
    replyKind: 'text',
  }),

  // The monitor
  monitor: route({
    name: 'monitor',
    method: 'GET',
    path: '/*',
    root: true,
    summary: "The web monitor's files (any path that is not a file answers index.html)",
    access: 'public',
    reply: r.opaqueReply,
    replyKind: 'html',
  }),

  ...fleetRoutes,
  ...versionRoutes,
} as const;

export type Routes = typeof routes;
export type RouteName = keyof Routes;
