import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import type { TaskAssignment } from '../core/types.js';
import type { LogAppendInput, TaskReportInput } from '../core/worker-protocol.js';
import type { AppPlugin, OutputParser, ProcessSpec } from './apps/types.js';
import type { Isolation, TaskProcess } from './isolation/index.js';
import { LineSplitter } from './line-splitter.js';
import { LogMirror } from './log-mirror.js';
import { LogShipper, type LogSpool } from './log-shipper.js';
import { taskEnvironment } from './task-environment.js';

/**
 * Runs one claimed task: the application plugin's processes in order, each as its own
 * process tree, output streamed line by line through the plugin's parser into the task log.
 * The first process that fails fails the task. The run can be stopped from outside: revoked
 * (the manager took the task back: no report), handed back (the worker is stopping) or timed
 * out (a failure).
 */

export interface TaskRunnerDeps {
  workerName: string;
  findApp: (name: string) => AppPlugin;
  /** POST /workers/:name/logs. */
  sendLogs: (body: LogAppendInput) => Promise<unknown>;
  /** A log request failed other than with lease_lost (e.g. not_found: re-register). */
  onLogError?: (error: unknown) => void;
  logger: Logger;
  /** How task processes are started and killed (cgroup v2 or process group + /proc scan). */
  isolation: Isolation;
  killGraceMs: number;
  logFlushMs?: number;
  logFlushBytes?: number;
  logBufferBytes?: number;
  /** How long to keep trying to send the rest of the log once the task has ended. */
  logFinalFlushMs: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Where output the manager cannot take yet waits (on disk); memory only without it. */
  logSpool?: LogSpool;
}

/** How a run ended: a report for the manager, or nothing to report (the task was revoked). */
export type TaskEnd =
  { kind: 'report'; report: TaskReportInput } | { kind: 'revoked'; reason: string };

type StopReason =
  | { kind: 'revoked'; reason: string }
  | { kind: 'handed-back'; reason: string }
  | { kind: 'timeout'; seconds: number };

interface ProcessResult {
  ok: boolean;
  exitCode: number | null;
  message: string;
}

const MAX_REPORT_MESSAGE = 4096;
/** setTimeout's longest delay (~24.8 days); longer timeouts are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** After the leader exits, how long its output pipes may stay open (held by leftovers). */
const PIPE_CLOSE_GRACE_MS = 1_000;

export class TaskRun {
  readonly task: TaskAssignment;
  progress = 0;
  status = '';
  readonly #deps: TaskRunnerDeps;
  readonly #log: Logger;
  readonly #shipper: LogShipper;
  /** The job's `logDirectory` file, when it names one (see `log-mirror.ts`). */
  readonly #mirror: LogMirror | undefined;
  #stop: StopReason | undefined;
  #current: { child: ChildProcess; group: TaskProcess; exited: boolean } | undefined;
  #killing: Promise<void> | undefined;
  #timeout: NodeJS.Timeout | undefined;
  /** Aborted when the run is stopped, so the final log flush does not hold a revoked slot. */
  readonly #stopped = new AbortController();

  constructor(task: TaskAssignment, deps: TaskRunnerDeps) {
    this.task = task;
    this.#deps = deps;
    this.#log = deps.logger.child({ job: task.jobId, task: task.taskIndex, lease: task.lease });
    this.#shipper = new LogShipper({
      lease: task.lease,
      send: deps.sendLogs,
      onLeaseLost: () => this.revoke('the manager answered lease_lost to a log request'),
      onError: deps.onLogError,
      flushMs: deps.logFlushMs,
      flushBytes: deps.logFlushBytes,
      maxBytes: deps.logBufferBytes,
      retryBaseMs: deps.retryBaseMs,
      retryMaxMs: deps.retryMaxMs,
      spool: deps.logSpool,
    });
    this.#mirror = LogMirror.open(task, deps.workerName, (error) =>
      this.#log.warn({ err: error }, 'cannot mirror the task log to its log directory'),
    );
  }

  get lease(): string {
    return this.task.lease;
  }

  /** The manager took the task back (cancelled, requeued, reassigned): kill it, report nothing. */
  revoke(reason: string): void {
    this.#halt({ kind: 'revoked', reason });
  }

  /** The worker is stopping: kill the task and give it back without an error. */
  handBack(reason = 'the worker is stopping'): void {
    this.#halt({ kind: 'handed-back', reason });
  }

  async run(): Promise<TaskEnd> {
    const task = this.task;
    this.#log.info({ plugin: task.plugin, frames: framesText(task.frames) }, 'task started');
    this.#shipper.start();
    this.#armTimeout();

    let result: ProcessResult = { ok: true, exitCode: null, message: '' };
    let specs: ProcessSpec[] = [];
    let parser: OutputParser | undefined;
    try {
      const app = this.#deps.findApp(task.plugin);
      specs = app.processes(task);
      parser = app.createParser(task);
      if (specs.length === 0) throw new Error(`plugin ${task.plugin} gave no process to run`);
    } catch (error) {
      result = { ok: false, exitCode: null, message: errorMessage(error) };
      this.#system(`cannot run the task: ${result.message}`);
    }

    for (let i = 0; result.ok && i < specs.length && !this.#stop; i++) {
      result = await this.#runProcess(specs[i]!, i, specs.length, parser!);
    }

    clearTimeout(this.#timeout);
    await this.#killing;
    const end = this.#end(result);
    if (end.kind === 'revoked') {
      this.#mirror?.write('system', `task revoked: ${end.reason}\n`);
      await this.#mirror?.close();
      this.#shipper.discard();
      this.#log.warn({ reason: end.reason }, 'task revoked');
      return end;
    }
    this.#system(
      end.report.outcome === 'completed'
        ? 'task completed'
        : `task ${end.report.outcome}: ${String(end.report.message)}`,
    );
    await this.#mirror?.close();
    const { unsentBytes, spooled } = await this.#shipper.close(
      this.#deps.logFinalFlushMs,
      this.#stopped.signal,
    );
    if (unsentBytes > 0) this.#log.warn({ unsentBytes }, 'task log not fully delivered');
    if (spooled) this.#log.info('the rest of the task log is spooled: delivered before the report');
    if (this.#shipper.leaseLost) return { kind: 'revoked', reason: 'lease lost' };
    this.#log.info(
      { outcome: end.report.outcome, message: end.report.message || undefined },
      'task ended',
    );
    return end;
  }

  #end(result: ProcessResult): TaskEnd {
    const stop = this.#stop;
    const lease = this.task.lease;
    if (stop?.kind === 'revoked') return stop;
    if (stop?.kind === 'handed-back') {
      return {
        kind: 'report',
        report: { lease, outcome: 'handed-back', exitCode: null, message: stop.reason },
      };
    }
    if (stop?.kind === 'timeout') {
      return {
        kind: 'report',
        report: {
          lease,
          outcome: 'failed',
          exitCode: null,
          message: `task timed out after ${stop.seconds} s`,
        },
      };
    }
    return {
      kind: 'report',
      report: {
        lease,
        outcome: result.ok ? 'completed' : 'failed',
        exitCode: result.exitCode,
        message: result.message.slice(0, MAX_REPORT_MESSAGE),
      },
    };
  }

  #halt(reason: StopReason): void {
    if (this.#stop) return;
    this.#stop = reason;
    this.#stopped.abort();
    const current = this.#current;
    if (current && !current.exited && current.child.pid !== undefined) {
      this.#killing = current.group.kill({ graceMs: this.#deps.killGraceMs });
    }
  }

  #armTimeout(): void {
    const seconds = this.task.taskTimeoutSeconds;
    if (!(seconds > 0)) return;
    const deadline = Date.now() + seconds * 1000;
    const arm = () => {
      const left = deadline - Date.now();
      if (left <= 0) {
        this.#system(`task timed out after ${seconds} s: killing it`);
        this.#halt({ kind: 'timeout', seconds });
        return;
      }
      this.#timeout = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    arm();
  }

  #system(text: string): void {
    this.#shipper.append('system', text + '\n');
    this.#mirror?.write('system', text + '\n');
  }

  /** The task's environment: never the worker's secrets; the runner's DROVER_* win. */
  #environment(spec: ProcessSpec): NodeJS.ProcessEnv {
    const t = this.task;
    const { env, ignored } = taskEnvironment({
      inherited: process.env,
      job: t.environment,
      plugin: spec.env,
      runner: {
        DROVER_JOB_ID: t.jobId,
        DROVER_JOB_NAME: t.jobName,
        DROVER_TASK_INDEX: String(t.taskIndex),
        DROVER_ATTEMPT: String(t.attempt),
        DROVER_FRAMES: t.frames.join(','),
        DROVER_FRAME_START: String(t.frames[0] ?? ''),
        DROVER_FRAME_END: String(t.frames.at(-1) ?? ''),
        DROVER_WORKER: this.#deps.workerName,
      },
    });
    for (const { name, reason } of ignored) {
      this.#system(`environment variable ${JSON.stringify(name)} ignored: ${reason}`);
    }
    return env;
  }

  #runProcess(
    spec: ProcessSpec,
    index: number,
    count: number,
    parser: OutputParser,
  ): Promise<ProcessResult> {
    const label = count > 1 ? `process ${index + 1}/${count}` : 'process';
    const program = spec.argv[0] ?? '';
    this.#system(`${label} started: ${JSON.stringify(spec.argv)}`);
    const started = Date.now();

    let group: TaskProcess;
    try {
      // Throws synchronously for an empty argv or a bad option; ENOENT and EACCES arrive
      // as the 'error' event below.
      group = this.#deps.isolation.spawn(spec.argv, {
        env: this.#environment(spec),
        cwd: spec.cwd,
      });
    } catch (error) {
      const message = `cannot start ${JSON.stringify(program)}: ${errorMessage(error)}`;
      this.#system(message);
      return Promise.resolve({ ok: false, exitCode: null, message });
    }
    const child = group.child;
    const current = { child, group, exited: false };
    this.#current = current;

    let parserError: string | undefined;
    const onLine = (stream: 'stdout' | 'stderr', line: string) => {
      this.#shipper.append(stream, line + '\n');
      this.#mirror?.write(stream, line + '\n');
      let info;
      try {
        info = parser.line(line, stream);
      } catch (error) {
        this.#log.warn({ err: error }, 'output parser threw');
        return;
      }
      if (!info) return;
      if (info.progress !== undefined) this.progress = info.progress;
      if (info.status !== undefined) this.status = info.status;
      if (info.progress !== undefined || info.status !== undefined) {
        this.#shipper.setProgress(info.progress, info.status);
      }
      if (info.error !== undefined && parserError === undefined) {
        parserError = info.error || 'the application reported an error';
      }
    };
    for (const stream of ['stdout', 'stderr'] as const) {
      const splitter = new LineSplitter();
      const source = child[stream];
      source?.on('data', (data: Buffer) => {
        for (const line of splitter.push(data)) onLine(stream, line);
      });
      source?.on('end', () => {
        for (const line of splitter.end()) onLine(stream, line);
      });
      source?.on('error', () => undefined);
    }

    return new Promise<ProcessResult>((resolve) => {
      let settled = false;
      const finish = (result: ProcessResult) => {
        if (settled) return;
        settled = true;
        current.exited = true;
        resolve(result);
      };
      child.once('error', (error) => {
        // Failed to start (ENOENT, EACCES): no 'exit' follows.
        if (child.pid !== undefined) return;
        const message = `cannot start ${JSON.stringify(program)}: ${error.message}`;
        this.#system(message);
        void group.release().then(() => finish({ ok: false, exitCode: null, message }));
      });
      child.once('exit', (code, signal) => {
        current.exited = true;
        // Leftovers of a finished process are killed at once (and its cgroup removed);
        // during a kill, the kill gives them their grace period.
        const cleaned = (this.#stop && this.#killing) || group.killLeftovers();
        const closed = new Promise<void>((r) => child.once('close', () => r()));
        const grace = new Promise<void>((r) => setTimeout(r, PIPE_CLOSE_GRACE_MS).unref());
        void Promise.race([closed, grace]).then(async () => {
          await cleaned;
          child.stdout?.destroy();
          child.stderr?.destroy();
          const seconds = ((Date.now() - started) / 1000).toFixed(1);
          const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
          this.#system(`${label} ${how} after ${seconds} s`);
          if (signal || code !== 0) {
            finish({ ok: false, exitCode: code, message: `${label} (${program}) ${how}` });
          } else if (parserError !== undefined) {
            finish({ ok: false, exitCode: code, message: parserError });
          } else {
            finish({ ok: true, exitCode: code, message: '' });
          }
        });
      });
    });
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function framesText(frames: number[]): string {
  if (frames.length <= 3) return frames.join(',');
  return `${frames[0]}…${frames.at(-1)} (${frames.length})`;
}
