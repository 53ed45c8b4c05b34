/**
 * The reply shapes of the HTTP API as zod schemas, for the OpenAPI document and the clients'
 * types. Each is tied to the domain type it describes (`satisfies z.ZodType<T>`), so the
 * two cannot drift apart silently; the contract test parses real replies with them.
 */
import { z } from 'zod';
import { roles, type TokenInfo } from '../core/auth.js';
import {
  fleetCapacities,
  machineStates,
  type FleetDecision,
  type FleetMachine,
  type FleetView,
  type UnservedWork,
} from '../core/fleet.js';
import { jobStates, jobSubmissionSchema, taskStates } from '../core/job-spec.js';
import { mappingOses, type PathMapping } from '../core/path-mapping.js';
import { pluginStates, type PluginView } from '../core/plugin-config.js';
import {
  eventTypes,
  workerStates,
  type FarmEvent,
  type Job,
  type LimitUsage,
  type Task,
  type TaskAssignment,
  type TaskLogChunk,
  type Worker,
} from '../core/types.js';

const time = z.number().int().meta({ description: 'milliseconds since the Unix epoch' });
const counts = z.object({
  pending: z.number().int(),
  queued: z.number().int(),
  rendering: z.number().int(),
  completed: z.number().int(),
  failed: z.number().int(),
  suspended: z.number().int(),
});

export const errorReply = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      field: z.string().optional().meta({ description: 'the input field at fault, dotted' }),
    }),
  })
  .meta({ id: 'Error' });

export const job = jobSubmissionSchema
  .extend({
    id: z.string(),
    state: z.enum(jobStates),
    pendingReason: z.string(),
    frameCount: z.number().int(),
    taskCount: z.number().int(),
    counts,
    errorCount: z.number().int(),
    badWorkers: z.array(z.string()),
    heldFor: z.array(z.string()),
    pluginData: z.record(z.string(), z.unknown()),
    submittedAt: time,
    startedAt: time.nullable(),
    finishedAt: time.nullable(),
  })
  .meta({ id: 'Job' }) satisfies z.ZodType<Job, unknown>;

export const task = z
  .object({
    jobId: z.string(),
    index: z.number().int(),
    frames: z.array(z.number().int()),
    state: z.enum(taskStates),
    worker: z.string().nullable(),
    attempt: z.number().int(),
    errorCount: z.number().int(),
    progress: z.number(),
    status: z.string(),
    startedAt: time.nullable(),
    finishedAt: time.nullable(),
  })
  .meta({ id: 'Task' }) satisfies z.ZodType<Task>;

export const worker = z
  .object({
    name: z.string(),
    region: z.string(),
    pools: z.array(z.string()),
    groups: z.array(z.string()),
    slots: z.number().int(),
    capabilities: z.object({
      cpus: z.number().int(),
      memoryMb: z.number().int(),
      os: z.string(),
      gpus: z.number().int(),
    }),
    state: z.enum(workerStates),
    enabled: z.boolean(),
    version: z.string(),
    apps: z.array(z.string()),
    runningTasks: z.array(z.string()),
    registeredAt: time,
    lastSeenAt: time,
  })
  .meta({ id: 'Worker' }) satisfies z.ZodType<Worker>;

export const taskAssignment = z
  .object({
    lease: z.string(),
    leaseExpiresAt: time,
    jobId: z.string(),
    jobName: z.string(),
    taskIndex: z.number().int(),
    attempt: z.number().int(),
    frames: z.array(z.number().int()),
    plugin: z.string(),
    pluginInfo: jobSubmissionSchema.shape.pluginInfo.unwrap(),
    environment: z.record(z.string(), z.string()),
    outputDirectories: z.array(z.string()),
    outputFilenames: z.array(z.string()),
    taskTimeoutSeconds: z.number().int(),
  })
  .meta({ id: 'TaskAssignment' }) satisfies z.ZodType<TaskAssignment, unknown>;

export const farmEvent = z
  .object({
    seq: z.number().int(),
    at: time,
    type: z.enum(eventTypes),
    jobId: z.string().nullable(),
    taskIndex: z.number().int().nullable(),
    worker: z.string().nullable(),
    data: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'FarmEvent' }) satisfies z.ZodType<FarmEvent>;

export const limitUsage = z
  .object({ name: z.string(), max: z.number().int(), inUse: z.number().int() })
  .meta({ id: 'Limit' }) satisfies z.ZodType<LimitUsage>;

export const taskLogChunk = z
  .object({
    attempt: z.number().int(),
    seq: z.number().int(),
    at: time,
    stream: z.enum(['stdout', 'stderr', 'system']),
    text: z.string(),
  })
  .meta({ id: 'TaskLogChunk' }) satisfies z.ZodType<TaskLogChunk>;

const configValue = z.union([z.string(), z.number(), z.boolean()]);
const entryBase = {
  key: z.string(),
  label: z.string(),
  category: z.string().optional(),
  description: z.string().optional(),
};
const configEntry = z.discriminatedUnion('type', [
  z.object({
    ...entryBase,
    type: z.enum(['string', 'multiline', 'password', 'path']),
    default: z.string(),
    maxLength: z.number().int().optional(),
  }),
  z.object({
    ...entryBase,
    type: z.literal('integer'),
    default: z.number(),
    min: z.number(),
    max: z.number(),
  }),
  z.object({ ...entryBase, type: z.literal('boolean'), default: z.boolean() }),
  z.object({
    ...entryBase,
    type: z.literal('enum'),
    default: z.string(),
    items: z.array(z.string()).readonly(),
  }),
]);
export const pluginView = z
  .object({
    name: z.string(),
    description: z.string(),
    state: z.enum(pluginStates),
    config: z.record(z.string(), configValue),
    schema: z.array(configEntry).readonly(),
    handlers: z.array(z.string()),
  })
  .meta({ id: 'Plugin' }) satisfies z.ZodType<PluginView, unknown>;

export const pathMapping = z
  .object({
    id: z.number().int(),
    prefix: z.string(),
    replacement: z.string(),
    region: z.string(),
    os: z.string().meta({ description: `one of ${mappingOses.join(', ')}, or '' for every OS` }),
    caseSensitive: z.boolean(),
  })
  .meta({ id: 'PathMapping' }) satisfies z.ZodType<PathMapping, unknown>;

export const tokenInfo = z
  .object({
    id: z.string(),
    name: z.string(),
    role: z.enum(roles),
    createdAt: time,
    revokedAt: time.nullable(),
    workers: z.string(),
  })
  .meta({ id: 'Token' }) satisfies z.ZodType<TokenInfo>;

const siteReplication = z.object({
  site: z.string(),
  pending: z.number().int(),
  lagMs: z.number(),
  lastDelayMs: z.number().nullable(),
});

// ── whole replies ──

export const healthReply = z.object({
  ok: z.boolean(),
  version: z.string(),
  store: z.string(),
  detail: z.string(),
  degraded: z
    .enum(['disk_full'])
    .optional()
    .meta({ description: 'why the store refuses writes while it still reads (its disk is full)' }),
});
export const jobReply = z.object({ job });
export const jobListReply = z.object({ jobs: z.array(job) });
export const taskListReply = z.object({ tasks: z.array(task) });
export const taskLogReply = z.object({ attempt: z.number().int(), chunks: z.array(taskLogChunk) });
export const workerReply = z.object({ worker });
export const workerListReply = z.object({ workers: z.array(worker) });
export const registerReply = z.object({
  worker,
  heartbeatIntervalMs: z.number().int(),
  leaseTtlMs: z.number().int(),
});
export const heartbeatReply = z.object({
  revoked: z.array(z.string()),
  enabled: z.boolean(),
  heartbeatIntervalMs: z.number().int(),
});
export const workReply = z.object({
  reportError: errorReply.shape.error.nullable(),
  task: taskAssignment.nullable(),
});
export const okReply = z.object({ ok: z.literal(true) });

/** An auxiliary file uploaded (or one chunk more of it): what a submission's `auxFiles` names. */
export const auxFileReply = z.object({
  auxFile: z.object({ ref: z.string(), name: z.string(), size: z.number().int() }),
});

/** One chunk of a job's auxiliary file, for a worker (`content` base64, at most 1 MiB). */
export const auxFileChunkReply = z.object({
  name: z.string(),
  size: z.number().int(),
  offset: z.number().int(),
  content: z.string(),
});
export const limitListReply = z.object({ limits: z.array(limitUsage) });
export const eventListReply = z.object({ events: z.array(farmEvent) });
export const pluginListReply = z.object({ plugins: z.array(pluginView) });
export const pluginReply = z.object({ plugin: pluginView });
export const pathListReply = z.object({ rules: z.array(pathMapping) });
export const pathRuleReply = z.object({ rule: pathMapping });
export const mapPathReply = z.object({ path: z.string() });
export const replicationReply = z.object({
  gfs: z.string(),
  sites: z.array(siteReplication).nullable(),
  note: z.string().nullable(),
});
export const latestOutputReply = z.object({
  image: z
    .object({
      directory: z.number().int(),
      name: z.string(),
      size: z.number().int(),
      modifiedAt: z.number(),
    })
    .nullable(),
});
export const whoamiReply = z.object({ name: z.string(), role: z.string() });
export const tokenCreatedReply = z.object({
  token: z.string().meta({ description: 'the secret, shown this once' }),
  info: tokenInfo,
});
export const tokenListReply = z.object({ tokens: z.array(tokenInfo) });
export const tokenReply = z.object({ token: tokenInfo });
/** A reply that is not JSON (a stream, an image, a page): documented by its content type. */
export const opaqueReply = z.unknown();

export type HealthReply = z.output<typeof healthReply>;
export type JobReply = z.output<typeof jobReply>;
export type JobListReply = z.output<typeof jobListReply>;
export type TaskListReply = z.output<typeof taskListReply>;
export type TaskLogReply = z.output<typeof taskLogReply>;
export type WorkerReply = z.output<typeof workerReply>;
export type WorkerListReply = z.output<typeof workerListReply>;
export type RegisterReply = z.output<typeof registerReply>;
export type WorkReply = z.output<typeof workReply>;
export type OkReply = z.output<typeof okReply>;
export type LimitListReply = z.output<typeof limitListReply>;
export type EventListReply = z.output<typeof eventListReply>;
export type PluginListReply = z.output<typeof pluginListReply>;
export type PluginReply = z.output<typeof pluginReply>;
export type LatestOutputReply = z.output<typeof latestOutputReply>;
export type { ErrorReply, ReplicationReply, SiteReplication } from '../core/api.js';

// ── fleets (issue 12) ──

const fleetDecision = z
  .object({
    fleet: z.string(),
    at: time,
    demand: z.number().int(),
    idle: z.number().int(),
    busy: z.number().int(),
    booting: z.number().int(),
    draining: z.number().int(),
    target: z.number().int(),
    launch: z.number().int(),
    drain: z.array(z.string()),
    reason: z.string(),
  })
  .meta({ id: 'FleetDecision' }) satisfies z.ZodType<FleetDecision>;

export const fleetView = z
  .object({
    name: z.string(),
    provider: z.string(),
    region: z.string(),
    pools: z.array(z.string()),
    groups: z.array(z.string()),
    capabilities: z.object({
      cpus: z.number().int(),
      memoryMb: z.number().int(),
      gpus: z.number().int(),
      os: z.string(),
    }),
    slots: z.number().int(),
    min: z.number().int(),
    max: z.number().int(),
    standby: z.number().int(),
    scaleOutPerMinute: z.number().int(),
    idleShutdownS: z.number().int(),
    costPerHour: z.number().optional(),
    costCapPerHour: z.number().optional(),
    capacity: z.enum(fleetCapacities),
    settings: z.record(z.string(), z.unknown()),
    pausedReason: z.string().nullable(),
    createdAt: time,
    updatedAt: time,
    status: z.object({
      booting: z.number().int(),
      running: z.number().int(),
      draining: z.number().int(),
      decision: fleetDecision.nullable(),
      costPerHourNow: z.number(),
      costHours: z.number(),
      machineHours: z.number(),
    }),
  })
  .meta({ id: 'Fleet' }) satisfies z.ZodType<FleetView>;

export const fleetMachine = z
  .object({
    id: z.string(),
    fleet: z.string(),
    provider: z.string(),
    worker: z.string(),
    state: z.enum(machineStates),
    capacity: z.enum(fleetCapacities),
    costPerHour: z.number().nullable(),
    launchedAt: time,
    registeredAt: time.nullable(),
    terminatedAt: time.nullable(),
    failure: z.string().nullable(),
  })
  .meta({ id: 'FleetMachine' }) satisfies z.ZodType<FleetMachine>;

const unservedWork = z
  .object({ jobId: z.string(), tasks: z.number().int(), reason: z.string() })
  .meta({ id: 'UnservedWork' }) satisfies z.ZodType<UnservedWork>;

export const fleetListReply = z.object({
  fleets: z.array(fleetView),
  unserved: z
    .array(unservedWork)
    .meta({ description: 'dispatchable work no fleet may run (it scales nothing), and why' }),
  scaler: z.object({
    state: z.string().meta({ description: "the scaler plugin's state (disabled, global)" }),
    providers: z.array(z.string()),
  }),
});
export const fleetReply = z.object({ fleet: fleetView });
export const fleetDetailReply = z.object({ fleet: fleetView, machines: z.array(fleetMachine) });
export const fleetHistoryReply = z.object({ decisions: z.array(fleetDecision) });
