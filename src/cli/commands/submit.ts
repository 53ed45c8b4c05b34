import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { userInfo, hostname } from 'node:os';
import { resolve } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import type { DroverClient } from '../../client/index.js';
import { DroverError, invalid } from '../../core/errors.js';
import type { JobSubmissionInput } from '../../core/job-spec.js';
import type { Job } from '../../core/types.js';
import { connect, type ConnectionOptions } from '../connection.js';
import { CommandFailed } from '../errors.js';
import { printJson } from '../output.js';
import { waitForVersion } from './versions.js';

export interface SubmitOptions extends ConnectionOptions {
  plugin?: string;
  frames?: string;
  chunkSize?: number;
  name?: string;
  batch?: string;
  user?: string;
  department?: string;
  comment?: string;
  priority?: number;
  pool?: string;
  secondaryPool?: string;
  group?: string;
  machineLimit?: number;
  allow?: string;
  deny?: string;
  limits?: string;
  regions?: string;
  dependsOn?: string;
  frameDependent?: boolean;
  outputDir?: string[];
  outputFile?: string[];
  info?: string[];
  extra?: string[];
  env?: string[];
  suspended?: boolean;
  timeout?: number;
  retries?: number;
  errorLimit?: number;
  onComplete?: 'nothing' | 'archive' | 'delete';
  optIn?: string;
  /** Publish as the next version of this product (`show/seq010/sh010/lightingMain`). */
  publish?: string;
  jobFile?: string;
  wait?: boolean;
  json?: boolean;
  /** Words after `--`: for CommandLine, the executable and its arguments. */
  command?: string[];
}

const list = (s: string | undefined) =>
  s === undefined
    ? undefined
    : s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);

/** `KEY=VALUE` pairs into an object; the flag name goes into the error. */
export function keyValues(pairs: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw invalid(flag, `"${pair}" is not KEY=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** Builds a submission from flags (and a JSON job file, which flags override). */
export function buildSubmission(o: SubmitOptions): JobSubmissionInput {
  let base: Partial<JobSubmissionInput> = {};
  if (o.jobFile) {
    try {
      base = JSON.parse(readFileSync(o.jobFile, 'utf8')) as Partial<JobSubmissionInput>;
    } catch (err) {
      throw invalid('--job-file', `cannot read ${o.jobFile}: ${(err as Error).message}`);
    }
  }
  const pluginInfo: Record<string, unknown> = {
    ...(base.pluginInfo ?? {}),
    ...keyValues(o.info, '--info'),
  };
  if (o.command && o.command.length > 0) {
    pluginInfo.executable = o.command[0];
    pluginInfo.arguments = o.command.slice(1);
  }
  const plugin =
    o.plugin ?? base.plugin ?? (o.command && o.command.length > 0 ? 'CommandLine' : undefined);
  if (!plugin)
    throw invalid('--plugin', 'name the application plugin (e.g. builtin-render, CommandLine)');
  const defined = <T extends object>(obj: T) =>
    Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
  return {
    user: userInfo().username,
    machineName: hostname(),
    ...base,
    ...defined({
      plugin,
      pluginInfo: pluginInfo as JobSubmissionInput['pluginInfo'],
      frames: o.frames,
      chunkSize: o.chunkSize,
      name: o.name,
      batchName: o.batch,
      user: o.user,
      department: o.department,
      comment: o.comment,
      priority: o.priority,
      pool: o.pool,
      secondaryPool: o.secondaryPool,
      group: o.group,
      machineLimit: o.machineLimit,
      allowList: list(o.allow),
      denyList: list(o.deny),
      limits: list(o.limits),
      regions: list(o.regions),
      dependencies: list(o.dependsOn),
      frameDependent: o.frameDependent,
      // A path typed on the command line means this machine's path: make it absolute here.
      outputDirectories: o.outputDir?.map((d) => resolve(d)),
      outputFilenames: o.outputFile,
      extraInfo: o.extra
        ? { ...(base.extraInfo ?? {}), ...keyValues(o.extra, '--extra') }
        : undefined,
      environment: o.env
        ? { ...(base.environment ?? {}), ...keyValues(o.env, '--env') }
        : undefined,
      initialState: o.suspended ? ('suspended' as const) : undefined,
      taskTimeoutSeconds: o.timeout,
      taskRetries: o.retries,
      jobErrorLimit: o.errorLimit,
      onComplete: o.onComplete,
      eventOptIns: list(o.optIn),
      publish: o.publish,
    }),
  } as JobSubmissionInput;
}

const FINISHED = new Set(['completed', 'failed', 'archived', 'deleted']);

/** Follows a job with a progress bar until it finishes; returns its final state. */
export async function waitForJob(
  client: DroverClient,
  id: string,
  display: 'bar' | 'lines' | 'none',
): Promise<Job> {
  const bar =
    display === 'bar'
      ? new SingleBar(
          {
            format: ' {bar} {percentage}% | {value}/{total} tasks | {state} | errors {errors}',
            hideCursor: true,
          },
          Presets.shades_classic,
        )
      : undefined;
  let job = await client.getJob(id);
  bar?.start(job.taskCount, job.counts.completed, { state: job.state, errors: job.errorCount });
  let line = '';
  try {
    while (!FINISHED.has(job.state)) {
      await new Promise((r) => setTimeout(r, 500));
      job = await client.getJob(id);
      const before = line;
      line = `${job.counts.completed}/${job.taskCount} tasks completed (${job.state}, ${job.errorCount} errors)`;
      bar?.update(job.counts.completed, { state: job.state, errors: job.errorCount });
      // Without a terminal (CI, pipes) a bar would be noise: a line per change instead.
      if (display === 'lines' && line !== before) process.stderr.write(`${line}\n`);
    }
  } finally {
    bar?.stop();
  }
  return job;
}

export interface SubmitOnceOptions {
  /** Default: a random UUID, one per invocation. */
  idempotencyKey?: string;
  /** Attempts when the manager cannot be reached, times out or answers 503 (default 3). */
  attempts?: number;
  /** Wait before the next attempt, times the attempt number (default 1 s). */
  retryDelayMs?: number;
  /** Told about each failed attempt that is tried again. */
  onRetry?: (error: DroverError, attempt: number) => void;
}

/**
 * Submits once per invocation, whatever happens on the wire: every attempt carries the same
 * `Idempotency-Key`, so an attempt whose reply was lost (a timeout while a large job was
 * still being inserted, a manager that failed over) and the retry that follows make one job
 * — the manager answers the retry with the first attempt's job.
 */
export async function submitOnce(
  client: DroverClient,
  spec: JobSubmissionInput,
  options: SubmitOnceOptions = {},
): Promise<Job> {
  const idempotencyKey = options.idempotencyKey ?? randomUUID();
  const attempts = options.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.submitJob(spec, { idempotencyKey });
    } catch (err) {
      const again = err instanceof DroverError && err.code === 'unavailable';
      if (!again || attempt >= attempts) throw err;
      options.onRetry?.(err, attempt);
      await new Promise((r) => setTimeout(r, (options.retryDelayMs ?? 1000) * attempt));
    }
  }
}

export async function submit(o: SubmitOptions): Promise<void> {
  const client = connect(o);
  const job = await submitOnce(client, buildSubmission(o), {
    onRetry: (err) =>
      process.stderr.write(`${err.message}; trying again (same Idempotency-Key: no duplicate)\n`),
  });
  if (o.json && !o.wait) return printJson(job);
  process.stdout.write(o.json ? '' : `${job.id}\n`);
  if (!o.wait) return;
  const done = await waitForJob(
    client,
    job.id,
    o.json ? 'none' : process.stderr.isTTY ? 'bar' : 'lines',
  );
  if (o.json) printJson(done);
  else
    process.stderr.write(
      `job ${done.id} ${done.state}: ${done.counts.completed}/${done.taskCount} tasks completed, ${done.errorCount} errors\n`,
    );
  const completed = done.counts.completed >= done.taskCount;
  if (!completed) throw new CommandFailed(`job ${done.id} ${done.state}`, 1);
  if (o.publish) await waitForVersion(client, done, Boolean(o.json));
}
