import { z } from 'zod';
import { absolutePathProblem, trimTrailingSeparator } from './paths.js';
import { text } from './text.js';
import { productProblem } from './versions.js';

/**
 * What a user submits: Drover's job fields, modelled on Deadline's JobInfo keys (the
 * Deadline name is given where it differs). Every size is bounded so one request cannot
 * exhaust the store.
 */
const name = text().trim().min(1).max(256);
const shortName = text()
  .trim()
  .max(128)
  .regex(/^[^\s,]*$/, 'must not contain spaces or commas');
const longText = text().max(4096);
const nameList = z.array(shortName.min(1)).max(1000);
const keyValues = z
  .record(text().min(1).max(256), text().max(8192))
  .refine((r) => Object.keys(r).length <= 256, 'at most 256 entries');

/** The environment variable that carries a job's `logDirectory` to its tasks. */
export const LOG_DIRECTORY_VARIABLE = 'DROVER_LOG_DIRECTORY';

/**
 * The environment variable that carries a job's `auxFiles` to its tasks (a JSON list of
 * `<id>/<name>` references; see `src/manager/aux-files.ts`).
 */
export const AUX_FILES_VARIABLE = 'DROVER_AUX_FILES';

/**
 * An uploaded auxiliary file: `<32 hex digits>/<name>` (see `POST /aux-files`). The name is a
 * plain file name on every worker: no separators, `:`, `=` (path mapping reads after it) or
 * control characters; not `.` or `..`.
 */
// eslint-disable-next-line no-control-regex -- control characters are what it refuses
export const AUX_FILE_REF = /^[0-9a-f]{32}\/(?!\.{1,2}$)[^/\\:=\0-\x1f]{1,255}$/;

/** What a process accepts as an environment variable name (POSIX's portable names). */
export const ENVIRONMENT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Why `name` cannot name a task's environment variable, or undefined. `=` in a name or NUL
 * in a value fails `spawn` on every worker, so they are refused at submission. `DROVER_…`
 * names are the runner's own (the worker's token, its name, the task's lease): a job that
 * set them would override what the runner gives the task. Compared without case, because
 * Windows environment names are case-insensitive.
 */
export function environmentNameProblem(name: string): string | undefined {
  if (!ENVIRONMENT_NAME.test(name)) {
    return 'must be a name of letters, digits and _ that does not start with a digit';
  }
  if (/^DROVER_/i.test(name)) {
    return "must not start with DROVER_ (those are the runner's own variables)";
  }
  return undefined;
}

/** A job's environment: checked names (see `environmentNameProblem`), values without NUL. */
const environment = z.record(text().min(1).max(256), text().max(8192)).superRefine((env, ctx) => {
  const names = Object.keys(env);
  if (names.length > 256) ctx.addIssue({ code: 'custom', message: 'at most 256 entries' });
  for (const n of names) {
    const problem = environmentNameProblem(n);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [n] });
  }
});

export const absolutePath = text()
  .superRefine((p, ctx) => {
    const problem = absolutePathProblem(p);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .overwrite(trimTrailingSeparator);

/** A plugin setting: a string, a number, a boolean or a list of strings. */
export const pluginValue = z.union([
  text().max(65536),
  z.number().finite(),
  z.boolean(),
  z.array(text().max(65536)).max(1000),
]);

export const jobStates = [
  'pending',
  'queued',
  'rendering',
  'suspended',
  'completed',
  'failed',
  'archived',
  'deleted',
] as const;
export type JobState = (typeof jobStates)[number];

export const taskStates = [
  'pending',
  'queued',
  'rendering',
  'completed',
  'failed',
  'suspended',
] as const;
export type TaskState = (typeof taskStates)[number];

export const onCompleteActions = ['nothing', 'archive', 'delete'] as const;
export type OnCompleteAction = (typeof onCompleteActions)[number];

export const jobSubmissionSchema = z
  .object({
    name: name.default('Untitled'),
    batchName: text().trim().max(256).default(''),
    user: text().trim().max(128).default(''),
    machineName: text().trim().max(256).default(''),
    department: text().trim().max(256).default(''),
    comment: longText.default(''),
    /** The application plugin that turns a task into a process (`CommandLine`, `builtin-render`, …). */
    plugin: text().trim().min(1).max(64),
    pluginInfo: z
      .record(text().min(1).max(256), pluginValue)
      .refine((r) => Object.keys(r).length <= 256, 'at most 256 settings')
      .default({}),
    /**
     * Frame list in Deadline's syntax (`1-100`, `1-100x5`, `1:100:5`, `1,3,7`, … see
     * `parseFrameList`). Kept exactly as submitted. Deadline: Frames (default 0).
     */
    frames: text().max(10_000).default('0'),
    chunkSize: z.number().int().min(1).max(1_000_000).default(1),
    priority: z.number().int().min(0).max(100).default(50),
    pool: shortName.default('none'),
    secondaryPool: shortName.default(''),
    group: shortName.default('none'),
    /** Most workers rendering this job at once; 0 = no limit. */
    machineLimit: z.number().int().min(0).max(100_000).default(0),
    /** Deadline: Whitelist. When not empty, only these workers render the job. */
    allowList: nameList.default([]),
    /** Deadline: Blacklist. */
    denyList: nameList.default([]),
    /** Deadline: LimitGroups. Named licence counters the job holds while a task renders. */
    limits: z.array(shortName.min(1)).max(64).default([]),
    /** Deadline: JobDependencies. Job ids this job waits for. */
    dependencies: z.array(text().trim().min(1).max(64)).max(1000).default([]),
    /** Deadline: IsFrameDependent. Each task waits only for the same frames of its dependencies. */
    frameDependent: z.boolean().default(false),
    /**
     * Deadline: ResumeOnFailedDependencies (default false). A dependency that failed counts as
     * done; otherwise the job stays pending, naming it, until it is requeued and completes.
     */
    resumeOnFailedDependencies: z.boolean().default(false),
    /**
     * Deadline: ResumeOnDeletedDependencies (default false). A dependency deleted (or
     * archived) before it completed counts as done; otherwise the job stays pending, naming it.
     */
    resumeOnDeletedDependencies: z.boolean().default(false),
    /** Regions the job may render in; empty = any. */
    regions: z.array(shortName.min(1)).max(64).default([]),
    outputDirectories: z.array(absolutePath).max(64).default([]),
    outputFilenames: z.array(text().min(1).max(1024)).max(64).default([]),
    /**
     * Deadline's "log to a file": a folder (absolute, path-mapped like `outputDirectories`)
     * where the worker mirrors each task's log as it runs, to `<jobId>_<task index>.log`
     * (see `src/worker/log-mirror.ts`), so a workstation can follow it as a file. Kept in the
     * job's environment as `DROVER_LOG_DIRECTORY` (see `prepareSubmission`), which is what
     * reaches the worker and the task.
     */
    logDirectory: absolutePath.optional(),
    /**
     * Deadline's auxiliary files: files uploaded beforehand (`POST /aux-files`), named by the
     * references the upload answered. Workers fetch them into the task's working folder before
     * the task starts; `<AUXFILE0>`… in plugin settings name the local copies. Carried in the
     * job's environment as `DROVER_AUX_FILES` (see `prepareSubmission`).
     */
    auxFiles: z
      .array(text().regex(AUX_FILE_REF, 'must be a reference an upload answered (id/name)'))
      .max(64)
      .optional(),
    extraInfo: keyValues.default({}),
    /** Deadline: EnvironmentKeyValue. Names `[A-Za-z_][A-Za-z0-9_]*`, not `DROVER_…`. */
    environment: environment.default({}),
    /** Deadline: InitialStatus (Active | Suspended). */
    initialState: z.enum(['queued', 'suspended']).default('queued'),
    /** Kill a task running longer than this; 0 = never. */
    taskTimeoutSeconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 24 * 3600)
      .default(0),
    /** Times a failed task is tried again before it fails. */
    taskRetries: z.number().int().min(0).max(100).default(2),
    /** Deadline: FailureDetectionJobErrors. The job fails after this many errors; 0 = never. */
    jobErrorLimit: z.number().int().min(0).max(100_000).default(100),
    /** A worker that errors this many times on the job goes on its bad-worker list; 0 = never. */
    badWorkerErrors: z.number().int().min(0).max(1000).default(5),
    onComplete: z.enum(onCompleteActions).default('nothing'),
    /** Opt-In event plugins this job wants (Deadline: EventOptIns). */
    eventOptIns: z.array(shortName.min(1)).max(64).default([]),
    /**
     * Publish the render as the next version of this product (`show/seq010/sh010/beauty`):
     * the manager allocates the version, sets the output directory from the publish
     * plugin's folder template and snapshots the scene (see `src/manager/publish.ts`).
     */
    publish: text()
      .superRefine((p, ctx) => {
        const problem = productProblem(p);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
  })
  .strict();

export type JobSubmissionInput = z.input<typeof jobSubmissionSchema>;
/** A submission with every default applied. */
export type JobSubmission = z.output<typeof jobSubmissionSchema>;

/** Fields of a live job a user may change. */
export const jobChangesSchema = z
  .object({
    name,
    batchName: text().trim().max(256),
    comment: longText,
    priority: z.number().int().min(0).max(100),
    pool: shortName,
    secondaryPool: shortName,
    group: shortName,
    limits: z.array(shortName.min(1)).max(64),
    machineLimit: z.number().int().min(0).max(100_000),
    allowList: nameList,
    denyList: nameList,
    regions: z.array(shortName.min(1)).max(64),
  })
  .partial()
  .strict()
  .refine((c) => Object.keys(c).length > 0, 'name at least one field to change');
export type JobChanges = z.output<typeof jobChangesSchema>;

export const jobActions = [
  'suspend',
  'resume',
  'requeue',
  'fail',
  'delete',
  'archive',
  'pend',
  'release',
] as const;
export type JobAction = (typeof jobActions)[number];
