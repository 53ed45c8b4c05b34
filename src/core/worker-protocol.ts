import { z } from 'zod';
import { APP_NAME_PATTERN } from './app-settings.js';
import { text } from './text.js';

/**
 * The worker ↔ manager protocol: what crosses the process boundary, validated by the
 * manager with these schemas and typed for the worker by the same ones.
 */

/** One log chunk's text; larger output is split by the worker. */
export const MAX_LOG_CHUNK_BYTES = 64 * 1024;
/** One log request carries at most this many chunks. */
export const MAX_LOG_CHUNKS_PER_REQUEST = 16;
/** A task attempt's log is trimmed past this size, with a marker line. */
export const MAX_TASK_LOG_BYTES = 4 * 1024 * 1024;
/** The longest a claim may wait for work (long-poll). */
export const MAX_CLAIM_WAIT_MS = 30_000;

const shortName = text()
  .trim()
  .min(1)
  .max(128)
  .regex(/^[^\s,]+$/, 'must not contain spaces or commas');

export const workerRegistrationSchema = z
  .object({
    name: shortName,
    region: shortName.default('default'),
    pools: z.array(shortName).max(64).default([]),
    groups: z.array(shortName).max(64).default([]),
    slots: z.number().int().min(1).max(256).default(1),
    capabilities: z
      .object({
        cpus: z.number().int().min(0).max(100_000),
        memoryMb: z.number().int().min(0).max(1_000_000_000),
        os: text().max(64),
        gpus: z.number().int().min(0).max(1024).default(0),
      })
      .strict(),
    version: text().max(64).default(''),
    /**
     * Application plugins the worker offers besides the built-in ones (`--apps-dir`); it is
     * given tasks of jobs naming these or a built-in plugin. Older workers send none (and
     * offer the built-in plugins only).
     */
    apps: z
      .array(text().regex(APP_NAME_PATTERN, 'must be an application plugin name'))
      .max(256)
      .transform((apps) => [...new Set(apps)].sort())
      .optional(),
  })
  .strict();
export type WorkerRegistrationInput = z.input<typeof workerRegistrationSchema>;
export type WorkerRegistration = z.output<typeof workerRegistrationSchema>;

const lease = text().min(1).max(128);

/**
 * Text a task's process wrote (log chunks, status lines, failure messages). A process may
 * print NUL (binary output); it is shown as U+FFFD rather than refused, so one stray byte
 * does not make the worker's log report fail — every other string here is refused whole by
 * `text()`. Lone surrogates cannot come from decoded bytes; they are replaced the same way.
 */
function outputText(max: number) {
  return z.preprocess(
    (v) => (typeof v === 'string' ? v.replaceAll('\0', '\uFFFD').toWellFormed() : v),
    text().max(max),
  );
}

export const heartbeatSchema = z
  .object({
    /** Leases the worker still holds, with their latest progress. */
    tasks: z
      .array(
        z
          .object({
            lease,
            progress: z.number().min(0).max(100).optional(),
            status: outputText(512).optional(),
          })
          .strict(),
      )
      .max(256)
      .default([]),
  })
  .strict();
export type Heartbeat = z.output<typeof heartbeatSchema>;

export interface HeartbeatReply {
  /** Leases the worker must stop working on (cancelled, suspended, expired, reassigned). */
  revoked: string[];
  enabled: boolean;
  heartbeatIntervalMs: number;
}

export const taskReportSchema = z
  .object({
    lease,
    /**
     * `handed-back`: the worker gives the task up without an error (shutting down).
     * `interrupted`: its machine is going away (a spot interruption): requeued at once, with
     * no error counted; the task's interruption count goes up instead (issue 12).
     */
    outcome: z.enum(['completed', 'failed', 'handed-back', 'interrupted']),
    exitCode: z.number().int().nullable().default(null),
    message: outputText(4096).default(''),
  })
  .strict();
export type TaskReport = z.output<typeof taskReportSchema>;
export type TaskReportInput = z.input<typeof taskReportSchema>;

export const workRequestSchema = z
  .object({
    /** The task this slot just finished, reported in the same round trip as the next claim. */
    report: taskReportSchema.optional(),
    /** How long to wait for work when none is queued (long-poll). */
    waitMs: z.number().int().min(0).max(MAX_CLAIM_WAIT_MS).default(0),
    /** Set when the worker wants to report only (shutting down, no more claims). */
    claim: z.boolean().default(true),
  })
  .strict();
export type WorkRequest = z.output<typeof workRequestSchema>;
export type WorkRequestInput = z.input<typeof workRequestSchema>;

export const logStreams = ['stdout', 'stderr', 'system'] as const;

export const logAppendSchema = z
  .object({
    lease,
    chunks: z
      .array(
        z
          .object({
            stream: z.enum(logStreams),
            text: outputText(MAX_LOG_CHUNK_BYTES),
          })
          .strict(),
      )
      .max(MAX_LOG_CHUNKS_PER_REQUEST),
    /**
     * The batch's number for its lease (1, 2, … in sending order): a number the manager has
     * taken already, or one below it, is a batch sent again, and its chunks are not logged
     * twice. Absent: always logged.
     */
    batch: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    progress: z.number().min(0).max(100).optional(),
    status: outputText(512).optional(),
  })
  .strict();
export type LogAppend = z.output<typeof logAppendSchema>;
export type LogAppendInput = z.input<typeof logAppendSchema>;
