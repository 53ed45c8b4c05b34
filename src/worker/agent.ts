import os from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { routes } from '../api/routes.js';
import { DroverClient } from '../client/index.js';
import {
  spotNoticeFromEnv,
  watchSpotNotice,
  type SpotNoticeOptions,
} from '../fleet/spot-notice.js';
import { DroverError, isTemporary } from '../core/errors.js';
import type { TaskAssignment, WorkerCapabilities } from '../core/types.js';
import type { TaskReportInput, WorkerRegistrationInput } from '../core/worker-protocol.js';
import { findApp as findBuiltInApp, type AppRegistry } from './apps/index.js';
import type { AppPlugin } from './apps/types.js';
import { backoffDelay, sleep } from './backoff.js';
import {
  detectIsolation,
  killRecordedGroups,
  type Isolation,
  type IsolationMode,
} from './isolation/index.js';
import { DEFAULT_KILL_GRACE_MS } from './process-tree.js';
import { Spool, SpoolInUseError, type SpoolEntry, type SpooledTask } from './spool.js';
import { TaskRun, type TaskEnd } from './task-runner.js';
import { prepareAuxFiles } from './aux-files.js';

/**
 * The worker agent: registers with the manager, heartbeats, and runs `slots` claim loops.
 * Each loop reports the task it just finished and claims the next one in one request
 * (measured 1.6× the throughput of separate claim/complete calls, DESIGN.md). The agent
 * survives manager restarts: unreachable → back off and retry with the pending report kept;
 * 404 for the worker → register again.
 *
 * Nothing a task produced is lost while the manager is away: its output and its report go
 * to an on-disk spool (`spool.ts`) until the manager has taken them, the log always before
 * the report (the manager takes no log for a finished lease). A worker that restarts first
 * delivers what its predecessor left there, before registering (registering requeues the
 * tasks the manager still thinks it runs). A report the manager refuses with `lease_lost`
 * (the lease expired and the task went to another worker meanwhile) is logged as refused and
 * dropped: it is not applied, so a task is never completed twice.
 */
export interface WorkerOptions {
  /** Manager address(es); ignored when `client` is given. */
  manager?: string | string[];
  token?: string;
  /** A ready client (tests); otherwise one is made from `manager` and `token`. */
  client?: DroverClient;
  name: string;
  region?: string;
  pools?: string[];
  groups?: string[];
  slots?: number;
  /** Reported to the manager (the package version). */
  version?: string;
  /** Overrides what is detected (cpus, memory, os; gpus default 0). */
  capabilities?: Partial<WorkerCapabilities>;
  /** Aborting it stops the worker gracefully: no new claims, running tasks may finish. */
  signal?: AbortSignal;
  /** Aborting it stops the worker now: running tasks are killed and handed back. */
  stopNowSignal?: AbortSignal;
  /**
   * Aborting it says the machine is going away (a spot interruption: EC2's instance-action
   * notice, or SIGUSR2 for a local fleet's worker): the worker stops claiming, hands its
   * running tasks back as `interrupted` (requeued at once, no error counted) and stops.
   */
  interruptSignal?: AbortSignal;
  /**
   * Watch EC2's instance metadata for a spot interruption notice, which interrupts the worker
   * like `interruptSignal` (`src/fleet/spot-notice.ts`). Default: on when the environment says
   * so (`DROVER_MACHINE_NOTICE=ec2`, set by the ec2 fleet provider's user data); `false`: off.
   */
  spotNotice?: Pick<SpotNoticeOptions, 'endpoint' | 'intervalMs'> | false;
  /** How long a graceful stop waits for running tasks before handing them back (30 s). */
  drainTimeoutMs?: number;
  /** Long-poll wait of a claim (20 s; the manager's maximum is 30 s). */
  claimWaitMs?: number;
  /** Overrides the heartbeat interval the manager asks for. */
  heartbeatIntervalMs?: number;
  /** SIGTERM → SIGKILL grace when killing a task's process tree (3 s). */
  killGraceMs?: number;
  /** Retry backoff while the manager is unreachable: base (250 ms) and cap (5 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Log batching: flush interval (250 ms), flush size (32 KiB), memory bound (8 MiB). */
  logFlushMs?: number;
  logFlushBytes?: number;
  logBufferBytes?: number;
  /** How long a finished task's remaining log may take to deliver (10 s). */
  logFinalFlushMs?: number;
  /**
   * Folder of the on-disk spool for logs and results the manager has not taken yet (default
   * `<os tmpdir>/drover-worker-<name>/`); `false` keeps unsent logs in memory only and
   * results only until the process exits.
   */
  spoolDir?: string | false;
  /** Most log bytes kept in the spool; the oldest are dropped past it (256 MiB). */
  spoolMaxBytes?: number;
  /**
   * How task processes are kept together (`isolation/`): `auto` (default) uses a cgroup v2
   * per task when this process may create one, else the process group + /proc scan;
   * `process-group` forces the fallback; `cgroup` fails to start without cgroup v2.
   */
  isolation?: IsolationMode;
  /**
   * The application plugins this worker runs (default: the built-in ones); those loaded
   * besides (`--apps-dir`) are advertised at registration, so only their jobs come here.
   */
  apps?: AppRegistry;
  /** Application plugin lookup (default: `apps`'s). */
  findApp?: (name: string) => AppPlugin;
  logger?: Logger;
}

const DEFAULTS = {
  slots: 1,
  drainTimeoutMs: 30_000,
  claimWaitMs: 20_000,
  heartbeatIntervalMs: 10_000,
  killGraceMs: DEFAULT_KILL_GRACE_MS,
  retryBaseMs: 250,
  retryMaxMs: 5_000,
  logFinalFlushMs: 10_000,
};

/** The spool folder a worker uses when none is given. */
export function defaultSpoolDir(name: string): string {
  return join(os.tmpdir(), `drover-worker-${name.replace(/[^A-Za-z0-9._-]/g, '_')}`);
}

/** How a spooled delivery went. */
type Delivery = 'delivered' | 'unreachable' | 'refused';

/** Errors that retrying cannot fix: the worker's configuration is wrong. */
const fatalCodes = new Set(['unauthorized', 'forbidden', 'invalid_input']);

function codeOf(error: unknown): string | undefined {
  return error instanceof DroverError ? error.code : undefined;
}

/** The longest a heartbeat waits for its answer (the goodbye waits for it too). */
const HEARTBEAT_TIMEOUT_MS = 10_000;

/** A running worker: `done` resolves once it has stopped and told the manager. */
export interface RunningWorker {
  readonly done: Promise<void>;
  /** Graceful stop (like the first SIGTERM). */
  stop(): void;
  /** Immediate stop: kill running tasks and hand them back (like a second SIGTERM). */
  stopNow(): void;
  /** The machine is going away: hand running tasks back as interrupted, and stop. */
  interrupt(): void;
}

/** Runs a worker until it is stopped through `options.signal` / `options.stopNowSignal`. */
export function runWorker(options: WorkerOptions): Promise<void> {
  return startWorker(options).done;
}

/** Starts a worker in-process and returns a handle to stop it (tests, `drover dev`). */
export function startWorker(options: WorkerOptions): RunningWorker {
  const agent = new WorkerAgent(options);
  return {
    done: agent.run(),
    stop: () => agent.stop(),
    stopNow: () => agent.stopNow(),
    interrupt: () => agent.interrupt(),
  };
}

export class WorkerAgent {
  readonly #o: WorkerOptions & typeof DEFAULTS;
  readonly #client: DroverClient;
  readonly #log: Logger;
  readonly #findApp: (name: string) => AppPlugin;
  readonly #running = new Map<string, TaskRun>();
  /** Aborted when stopping starts: cancels long-polls, backoff sleeps and registration. */
  readonly #stopping = new AbortController();
  /** Aborted once every slot has ended: stops the heartbeat loop. */
  readonly #slotsDone = new AbortController();
  #now = false;
  /** The machine is going away: hand-backs are reported as `interrupted`. */
  #interrupted = false;
  #enabled = true;
  #enabledWaiters: (() => void)[] = [];
  #heartbeatIntervalMs: number;
  #registering: Promise<boolean> | undefined;
  #registeredOnce = false;
  #drainTimer: NodeJS.Timeout | undefined;
  #started = false;
  /** The interval was set in the options: the manager's does not replace it. */
  readonly #fixedHeartbeat: boolean;
  #spool: Spool | undefined;
  #isolation: Isolation | undefined;
  /** The tasks whose log or report is not delivered yet, by lease (for the worker log). */
  readonly #tasks = new Map<string, SpooledTask>();

  constructor(options: WorkerOptions) {
    const defined = Object.fromEntries(
      Object.entries(options).filter(([, v]) => v !== undefined),
    ) as WorkerOptions;
    this.#o = { ...DEFAULTS, ...defined };
    if (options.client) {
      this.#client = options.client;
    } else if (options.manager !== undefined) {
      this.#client = new DroverClient({ url: options.manager, token: options.token });
    } else {
      throw new DroverError('invalid_input', 'manager: name the manager address', 'manager');
    }
    this.#log =
      options.logger ??
      pino({ name: 'drover-worker', base: { worker: options.name } }, pino.destination(2));
    const apps = options.apps;
    this.#findApp = options.findApp ?? (apps ? (name: string) => apps.find(name) : findBuiltInApp);
    this.#heartbeatIntervalMs = this.#o.heartbeatIntervalMs;
    this.#fixedHeartbeat = options.heartbeatIntervalMs !== undefined;
  }

  get stopping(): boolean {
    return this.#stopping.signal.aborted;
  }

  /** Stop claiming; let running tasks finish for up to `drainTimeoutMs`, then hand them back. */
  stop(): void {
    if (this.stopping) return;
    this.#log.info(
      { running: this.#running.size, drainTimeoutMs: this.#o.drainTimeoutMs },
      'stopping: no new tasks, waiting for running ones',
    );
    this.#stopping.abort();
    this.#wakeEnabledWaiters();
    this.#drainTimer = setTimeout(() => this.stopNow(), this.#o.drainTimeoutMs);
  }

  /** Kill running tasks and hand them back at once. */
  stopNow(): void {
    if (this.#now) return;
    if (!this.stopping) this.stop();
    this.#now = true;
    if (this.#running.size > 0) {
      this.#log.warn({ running: this.#running.size }, 'stopping now: handing running tasks back');
    }
    for (const run of this.#running.values()) run.handBack();
  }

  /** The machine is going away (spot interruption): hand everything back as interrupted. */
  interrupt(): void {
    if (this.#interrupted) return;
    this.#interrupted = true;
    this.#log.warn(
      { running: this.#running.size },
      'the machine is going away: handing tasks back',
    );
    this.stopNow();
  }

  /** A hand-back report, `interrupted` once the machine is going away. */
  #handBackReport(report: TaskReportInput): TaskReportInput {
    return this.#interrupted && report.outcome === 'handed-back'
      ? { ...report, outcome: 'interrupted', message: 'the machine is going away' }
      : report;
  }

  async run(): Promise<void> {
    if (this.#started) throw new Error('a WorkerAgent runs once');
    this.#started = true;
    const { signal, stopNowSignal } = this.#o;
    const onStop = () => this.stop();
    const onStopNow = () => this.stopNow();
    const onInterrupt = () => this.interrupt();
    this.#o.interruptSignal?.addEventListener('abort', onInterrupt, { once: true });
    if (this.#o.interruptSignal?.aborted) this.interrupt();
    const spot = this.#o.spotNotice ?? spotNoticeFromEnv(process.env);
    const spotWatcher = spot
      ? watchSpotNotice({
          ...spot,
          onNotice: (notice) => {
            this.#log.warn(notice, 'EC2 spot interruption notice');
            this.interrupt();
          },
          onError: (err) => this.#log.warn({ err }, 'cannot read the spot notice (will retry)'),
        })
      : undefined;
    signal?.addEventListener('abort', onStop, { once: true });
    stopNowSignal?.addEventListener('abort', onStopNow, { once: true });
    if (signal?.aborted) this.stop();
    if (stopNowSignal?.aborted) this.stopNow();
    try {
      this.#spool = this.#openSpool();
      this.#isolation = detectIsolation({
        mode: this.#o.isolation,
        ...(this.#spool ? { recorder: this.#spool.groupRecorder } : {}),
      });
      this.#log.info(
        { isolation: this.#isolation.mechanism },
        `process isolation: ${this.#isolation.description}`,
      );
      await this.#killLeftoverGroups();
      if (!(await this.#deliverSpooled())) {
        this.#log.info('stopped before delivering the spool');
        return;
      }
      if (!(await this.#register())) {
        this.#log.info('stopped before registering');
        return;
      }
      const heartbeats = this.#heartbeatLoop();
      const slots = Array.from({ length: this.#o.slots }, (_, i) => this.#slotLoop(i));
      await Promise.all(slots);
      this.#slotsDone.abort();
      await heartbeats;
      try {
        await this.#client.workerStopped(this.#o.name, { timeoutMs: 5_000 });
      } catch (error) {
        this.#log.warn({ err: error }, 'could not tell the manager the worker stopped');
      }
      this.#log.info('worker stopped');
    } finally {
      this.#spool?.close();
      clearTimeout(this.#drainTimer);
      signal?.removeEventListener('abort', onStop);
      stopNowSignal?.removeEventListener('abort', onStopNow);
      this.#o.interruptSignal?.removeEventListener('abort', onInterrupt);
      spotWatcher?.stop();
    }
  }

  // ----- the spool -----

  #openSpool(): Spool | undefined {
    const { spoolDir, spoolMaxBytes, name } = this.#o;
    if (spoolDir === false) return undefined;
    const dir = spoolDir ?? defaultSpoolDir(name);
    let spool: Spool;
    try {
      spool = Spool.open({ dir, maxBytes: spoolMaxBytes });
    } catch (error) {
      // Two workers of one name on one host: the default folder falls back to a private
      // one (a restart of this process will not find it); a chosen folder is an error.
      if (!(error instanceof SpoolInUseError) || spoolDir !== undefined) throw error;
      const own = `${dir}-${process.pid}-${Date.now().toString(36)}`;
      this.#log.warn({ err: error, spoolDir: own }, 'spool folder in use: using a private one');
      spool = Spool.open({ dir: own, maxBytes: spoolMaxBytes });
    }
    const found = spool.found();
    this.#log.info(
      { spoolDir: spool.dir, spooled: found.length, logBytes: spool.logBytes },
      found.length > 0 ? 'spool opened: delivering what the last run left' : 'spool opened',
    );
    return spool;
  }

  /**
   * Before anything else: kills what the tasks of an earlier run of this worker left running
   * (it was SIGKILLed or crashed). Registering makes the manager requeue those tasks; their
   * old processes must not render the same frames alongside the new attempt.
   */
  async #killLeftoverGroups(): Promise<void> {
    const spool = this.#spool;
    const records = spool?.taskGroupsFound() ?? [];
    if (!spool || records.length === 0) return;
    const { pids } = await killRecordedGroups(records);
    for (const record of records) spool.groupRecorder.remove(record.id);
    this.#log.warn(
      { groups: records.length, pids },
      `killed ${pids.length} process(es) left running by ${records.length} task group(s) of ` +
        'an earlier run of this worker',
    );
  }

  /**
   * Before registering: delivers the logs and reports an earlier run of this worker left in
   * the spool, retrying while the manager is unreachable. False when the worker stopped first.
   */
  async #deliverSpooled(): Promise<boolean> {
    const entries = this.#spool?.found() ?? [];
    for (const entry of entries) {
      this.#tasks.set(entry.task.lease, entry.task);
      for (let attempt = 0; ; attempt++) {
        if (this.stopping) return false;
        if ((await this.#deliverEntry(entry)) !== 'unreachable') break;
        const delay = this.#backoff(attempt);
        this.#log.warn(
          { retryInMs: delay, lease: entry.task.lease },
          'cannot reach the manager to deliver the spool',
        );
        await sleep(delay, this.#stopping.signal);
      }
    }
    return true;
  }

  async #deliverEntry({ task, result }: SpoolEntry): Promise<Delivery> {
    const logs = await this.#deliverLog(task.lease, this.#log, true);
    if (logs === 'unreachable') return logs;
    if (!result) {
      // It was still running when the last run ended; registering requeues it.
      this.#log.info(this.#describe(task.lease), 'delivered the log of an unfinished task');
    } else if (logs === 'refused') {
      this.#recordRefused(result, 'the manager refused its log');
    } else {
      try {
        await this.#client.report(this.#o.name, result, { timeoutMs: 10_000 });
        this.#log.info(
          { ...this.#describe(task.lease), outcome: result.outcome },
          'delivered a spooled report',
        );
      } catch (error) {
        const code = codeOf(error);
        if (isTemporary(code)) return 'unreachable';
        if (fatalCodes.has(code) && code !== 'invalid_input') throw error;
        this.#recordRefused(result, error instanceof Error ? error.message : String(error));
      }
    }
    this.#forget(task.lease);
    return 'delivered';
  }

  /**
   * Sends a lease's spooled log batches, oldest first. `refused`: the manager no longer
   * takes logs for the lease (or, before registering, does not know this worker).
   */
  async #deliverLog(lease: string, log: Logger, starting: boolean): Promise<Delivery> {
    const spool = this.#spool;
    if (!spool) return 'delivered';
    while (spool.hasLog(lease)) {
      const { batch, chunks } = spool.peekLog(lease) ?? { chunks: [] };
      const body = batch === undefined ? { lease, chunks } : { lease, chunks, batch };
      try {
        await this.#client.appendLogs(this.#o.name, body, { timeoutMs: 10_000 });
        spool.shiftLog(lease);
      } catch (error) {
        const code = codeOf(error);
        if (isTemporary(code)) return 'unreachable';
        if (code === 'lease_lost') return 'refused';
        if (code === 'not_found') {
          if (starting) return 'refused';
          void this.#register();
          return 'unreachable';
        }
        if (fatalCodes.has(code) && code !== 'invalid_input') throw error;
        log.warn({ err: error, lease }, 'a spooled log batch was refused as it is: dropped');
        spool.shiftLog(lease);
      }
    }
    return 'delivered';
  }

  #describe(lease: string): Record<string, unknown> {
    const t = this.#tasks.get(lease);
    return t ? { lease, job: t.jobId, task: t.taskIndex, attempt: t.attempt } : { lease };
  }

  /** A report the manager will not apply: logged (the record of it), never retried. */
  #recordRefused(report: TaskReportInput, reason: string): void {
    this.#log.warn(
      { ...this.#describe(report.lease), outcome: report.outcome, reason },
      'report refused: the lease is no longer current (the task was requeued or given to ' +
        'another worker); this result is not applied',
    );
  }

  /** The lease's log and report are delivered (or refused): nothing more to keep. */
  #forget(lease: string): void {
    this.#tasks.delete(lease);
    this.#spool?.remove(lease);
  }

  // ----- registration -----

  #registration(): WorkerRegistrationInput {
    const o = this.#o;
    return {
      name: o.name,
      region: o.region,
      pools: o.pools,
      groups: o.groups,
      slots: o.slots,
      version: o.version,
      apps: [...(o.apps?.extra ?? [])],
      capabilities: {
        cpus: os.cpus().length,
        memoryMb: Math.round(os.totalmem() / (1024 * 1024)),
        os: process.platform,
        gpus: 0,
        ...o.capabilities,
      },
    };
  }

  /**
   * Registers (again), retrying while the manager is unreachable. Concurrent callers share
   * one attempt. False when the worker stopped first. A configuration error (bad token,
   * invalid name) on the first registration rejects: retrying cannot fix it.
   */
  #register(): Promise<boolean> {
    this.#registering ??= this.#registerLoop().finally(() => {
      this.#registering = undefined;
    });
    return this.#registering;
  }

  async #registerLoop(): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      if (this.stopping) return false;
      try {
        const reply = await this.#client.registerWorker(this.#registration(), {
          signal: this.#stopping.signal,
        });
        if (!this.#fixedHeartbeat && reply.heartbeatIntervalMs > 0) {
          this.#heartbeatIntervalMs = reply.heartbeatIntervalMs;
        }
        this.#setEnabled(reply.worker.enabled);
        this.#log.info(
          { manager: this.#client.url, heartbeatIntervalMs: this.#heartbeatIntervalMs },
          this.#registeredOnce ? 'registered again' : 'registered',
        );
        this.#registeredOnce = true;
        return true;
      } catch (error) {
        if (this.stopping) return false;
        const code = codeOf(error);
        if (!this.#registeredOnce && code && fatalCodes.has(code)) throw error;
        const delay = this.#backoff(attempt);
        this.#log.warn({ err: error, retryInMs: delay }, 'cannot register with the manager');
        await sleep(delay, this.#stopping.signal);
      }
    }
  }

  // ----- heartbeats -----

  async #heartbeatLoop(): Promise<void> {
    const done = this.#slotsDone.signal;
    while (!done.aborted) {
      await sleep(this.#heartbeatIntervalMs, done);
      if (done.aborted) return;
      if (this.#registering) await this.#registering;
      const tasks: { lease: string; progress?: number; status?: string }[] = [
        ...this.#running.values(),
      ].map((run) => ({
        lease: run.lease,
        progress: Math.min(100, Math.max(0, run.progress)),
        status: run.status.slice(0, 512),
      }));
      // Finished tasks whose log or report is still on its way keep their lease alive too.
      for (const lease of this.#tasks.keys()) {
        if (!this.#running.has(lease) && tasks.length < 256)
          tasks.push({ lease, progress: 100, status: '' });
      }
      try {
        // Not aborted when the slots finish: the goodbye (`workerStopped`) waits for this
        // heartbeat's answer, so the manager never handles a heartbeat after the goodbye
        // (which would show a stopped worker idle again). Bounded by the call's timeout.
        const reply = await this.#client.heartbeat(
          this.#o.name,
          { tasks },
          { timeoutMs: HEARTBEAT_TIMEOUT_MS },
        );
        for (const lease of reply.revoked) {
          const run = this.#running.get(lease);
          if (run) {
            this.#log.warn({ lease, job: run.task.jobId, task: run.task.taskIndex }, 'revoked');
            run.revoke('revoked by the manager');
          }
        }
        this.#setEnabled(reply.enabled);
        if (!this.#fixedHeartbeat && reply.heartbeatIntervalMs > 0) {
          this.#heartbeatIntervalMs = reply.heartbeatIntervalMs;
        }
      } catch (error) {
        if (done.aborted) return;
        if (codeOf(error) === 'not_found') {
          this.#log.warn('the manager does not know this worker: registering again');
          await this.#register();
        } else {
          this.#log.warn({ err: error }, 'heartbeat failed');
        }
      }
    }
  }

  #setEnabled(enabled: boolean): void {
    if (enabled === this.#enabled) return;
    this.#enabled = enabled;
    this.#log.info(enabled ? 'enabled: claiming tasks again' : 'disabled: no new tasks');
    if (enabled) this.#wakeEnabledWaiters();
  }

  #wakeEnabledWaiters(): void {
    for (const wake of this.#enabledWaiters.splice(0)) wake();
  }

  #untilEnabledOrStopping(): Promise<void> {
    if (this.#enabled || this.stopping) return Promise.resolve();
    return new Promise((resolve) => this.#enabledWaiters.push(resolve));
  }

  // ----- slots -----

  async #slotLoop(slot: number): Promise<void> {
    let pending: TaskReportInput | undefined;
    let failures = 0;
    const log = this.#log.child({ slot });
    while (!this.stopping) {
      if (pending && this.#spool?.hasLog(pending.lease)) {
        // The rest of the task's log first: the manager takes no log for a finished lease.
        const delivery = await this.#deliverLog(pending.lease, log, false);
        if (delivery === 'unreachable') {
          const delay = this.#backoff(failures++);
          log.warn({ retryInMs: delay }, 'cannot reach the manager to deliver a spooled log');
          await sleep(delay, this.#stopping.signal);
          continue;
        }
        if (delivery === 'refused') {
          this.#recordRefused(pending, 'the manager refused its log');
          this.#forget(pending.lease);
          pending = undefined;
        }
      }
      if (!this.#enabled) {
        if (pending) {
          // Deliver the last report without claiming, then wait to be enabled again.
          if (await this.#tryReport(pending, log)) {
            this.#forget(pending.lease);
            pending = undefined;
          }
          if (pending) {
            await sleep(this.#backoff(failures++), this.#stopping.signal);
            continue;
          }
        }
        await this.#untilEnabledOrStopping();
        continue;
      }

      let reply;
      try {
        reply = await this.#client.work(
          this.#o.name,
          { report: pending, waitMs: this.#o.claimWaitMs, claim: true },
          { signal: this.#stopping.signal },
        );
        failures = 0;
      } catch (error) {
        if (this.stopping) break;
        const code = codeOf(error);
        if (code === 'not_found') {
          log.warn('the manager does not know this worker: registering again');
          await this.#register();
          continue;
        }
        const delay = this.#backoff(failures++);
        if (isTemporary(code)) {
          log.warn({ err: error, retryInMs: delay }, 'cannot reach the manager');
        } else {
          // Refused as it is (invalid_input, too_large): sending it again cannot succeed.
          log.error({ err: error, report: pending }, 'the manager refused the work request');
          if (pending) this.#forget(pending.lease);
          pending = undefined;
        }
        await sleep(delay, this.#stopping.signal);
        continue;
      }

      if (pending) {
        if (reply.reportError) this.#recordRefused(pending, reply.reportError.message);
        this.#forget(pending.lease);
      }
      pending = undefined;
      const task = reply.task;
      if (!task) continue;
      if (this.stopping) {
        pending = this.#handBackReport(handedBack(task, 'the worker is stopping'));
        break;
      }
      const end = await this.#runTask(task);
      if (end.kind === 'report') pending = end.report;
    }
    if (pending) await this.#deliverFinal(pending, log);
  }

  async #runTask(task: TaskAssignment): Promise<TaskEnd> {
    const meta: SpooledTask = {
      lease: task.lease,
      jobId: task.jobId,
      taskIndex: task.taskIndex,
      attempt: task.attempt,
    };
    this.#tasks.set(task.lease, meta);
    this.#spool?.begin(meta);
    // The task as its run sees it: the paths of the job's auxiliary files go in once they are
    // fetched (below), while the run is already listed, so heartbeats renew its lease.
    const runTask: TaskAssignment = { ...task };
    let findApp = this.#findApp;
    let cleanup = (): Promise<void> => Promise.resolve();
    const run = new TaskRun(runTask, {
      workerName: this.#o.name,
      findApp: (name) => findApp(name),
      sendLogs: (body) => this.#client.appendLogs(this.#o.name, body),
      onLogError: (error) => {
        if (codeOf(error) === 'not_found') void this.#register();
        else this.#log.debug({ err: error }, 'log request failed');
      },
      logger: this.#log,
      isolation: this.#isolation!,
      killGraceMs: this.#o.killGraceMs,
      logFlushMs: this.#o.logFlushMs,
      logFlushBytes: this.#o.logFlushBytes,
      logBufferBytes: this.#o.logBufferBytes,
      logFinalFlushMs: this.#o.logFinalFlushMs,
      retryBaseMs: this.#o.retryBaseMs,
      retryMaxMs: this.#o.retryMaxMs,
      logSpool: this.#spool?.logSpool(task.lease),
    });
    this.#running.set(task.lease, run);
    if (this.#now) run.handBack();
    let end: TaskEnd | undefined;
    try {
      // The job's auxiliary files, into the task's own folder (a failure fails the task).
      const prepared = await prepareAuxFiles(task, this.#findApp, (index, offset) =>
        this.#client.call(routes.fetchAuxFile, {
          params: { name: this.#o.name, job: task.jobId, index },
          query: { offset },
        }),
      );
      runTask.pluginInfo = prepared.task.pluginInfo;
      findApp = prepared.findApp;
      cleanup = prepared.cleanup;
      end = await run.run();
      if (end.kind === 'report') end = { ...end, report: this.#handBackReport(end.report) };
      // Written before the first attempt to send it: a worker killed from here on delivers
      // it when it starts again (if the lease is still current then).
      if (end.kind === 'report') this.#spool?.saveResult(task.lease, end.report);
      return end;
    } finally {
      this.#running.delete(task.lease);
      if (end?.kind !== 'report') this.#forget(task.lease);
      await cleanup().catch((err: unknown) =>
        this.#log.warn({ err }, "cannot remove the task's auxiliary files"),
      );
    }
  }

  /** One report without a claim; false when the manager could not be reached. */
  async #tryReport(report: TaskReportInput, log: Logger): Promise<boolean> {
    try {
      await this.#client.report(this.#o.name, report, { timeoutMs: 5_000 });
      return true;
    } catch (error) {
      const code = codeOf(error);
      if (isTemporary(code)) {
        log.warn({ err: error }, 'cannot reach the manager to report a task');
        return false;
      }
      if (code === 'lease_lost') {
        // Often a report that did arrive in a long-poll cut short by the stop.
        this.#recordRefused(report, 'lease_lost (perhaps it had arrived already)');
      } else {
        log.warn({ err: error, lease: report.lease }, 'report refused');
      }
      return true;
    }
  }

  /**
   * Best effort while stopping: a few attempts, fewer when stopping now. What is not
   * delivered stays in the spool for the next start.
   */
  async #deliverFinal(report: TaskReportInput, log: Logger): Promise<void> {
    const attempts = this.#now ? 1 : 3;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const logs = await this.#deliverLog(report.lease, log, false);
      if (logs === 'refused') {
        this.#recordRefused(report, 'the manager refused its log');
        this.#forget(report.lease);
        return;
      }
      if (logs === 'delivered' && (await this.#tryReport(report, log))) {
        log.info({ lease: report.lease, outcome: report.outcome }, 'reported');
        this.#forget(report.lease);
        return;
      }
      if (attempt + 1 < attempts) await sleep(this.#backoff(attempt));
    }
    log.warn(
      { lease: report.lease, spoolDir: this.#spool?.dir },
      this.#spool
        ? 'gave up reporting for now: the report stays in the spool for the next start'
        : 'gave up reporting: the lease will expire on the manager',
    );
  }

  #backoff(attempt: number): number {
    return backoffDelay(attempt, { baseMs: this.#o.retryBaseMs, maxMs: this.#o.retryMaxMs });
  }
}

function handedBack(task: TaskAssignment, message: string): TaskReportInput {
  return { lease: task.lease, outcome: 'handed-back', exitCode: null, message };
}
