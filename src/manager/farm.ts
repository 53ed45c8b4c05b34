import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { invalid } from '../core/errors.js';
import { MAX_FRAMES_PER_JOB } from '../core/frames.js';
import { prepareSubmission } from '../core/submission.js';
import type { PluginHost } from '../events/host.js';
import type { AuxFileStore } from './aux-files.js';
import { PathMapper } from './path-mapper.js';
import { PluginOffers } from './plugin-offers.js';
import { preparePublish } from './publish.js';
import type { JobAction, JobChanges } from '../core/job-spec.js';
import type { Principal } from '../core/auth.js';
import type { Job } from '../core/types.js';
import type { TaskAssignment } from '../core/types.js';
import type { TaskReport } from '../core/worker-protocol.js';
import type { IdempotencyKey, Store } from '../store/contract.js';
import type { ManagerSettings } from './config.js';
import { WorkSignal } from './work-signal.js';
import { postgresPool } from '../store/postgres/index.js';
import type { WorkResult } from '../store/contract.js';
import { ClaimGate, claimGateSize } from './claim-gate.js';
import { FarmMetrics } from './metrics.js';
import { FleetService } from '../fleet/service.js';

/** How often a long-polling claim looks again even when nothing woke it. */
const CLAIM_RECHECK_MS = 1_000;

/**
 * The manager's services over the store: validation beyond the schema (plugin settings,
 * frame lists), long-poll dispatch, and waking idle workers when work may have appeared.
 */
export class Farm {
  readonly signal = new WorkSignal();

  /** Event plugins, when the manager runs them. */
  plugins: PluginHost | undefined;
  /** Auxiliary files (`<dataDir>/aux-files`), when the manager keeps them. */
  auxFiles: AuxFileStore | undefined;
  readonly paths: PathMapper;
  /** Which application plugins workers offer (a queued job no worker can run says so). */
  readonly pluginOffers: PluginOffers;
  /** Claims in the store at once (see `claim-gate.ts`). */
  private readonly gate: ClaimGate;
  readonly metrics: FarmMetrics;
  /** Fleets, their providers and the scaler's latest decisions (issue 12). */
  readonly fleets: FleetService;

  constructor(
    readonly store: Store,
    readonly settings: ManagerSettings,
    readonly log: Logger,
  ) {
    this.paths = new PathMapper(store);
    this.pluginOffers = new PluginOffers(() => store.listWorkers());
    this.gate = new ClaimGate(claimGateSize(postgresPool(store)?.max));
    this.metrics = new FarmMetrics(this);
    this.fleets = new FleetService(store);
  }

  /** Long-polling claims waiting for work now (the metrics). */
  get waitingClaims(): number {
    return this.signal.waiting;
  }

  /** Claims waiting for their turn at the claim gate now (the metrics). */
  get queuedClaims(): number {
    return this.gate.queued;
  }

  /**
   * Submits a job; a user token submits as itself, whatever the body says. The principal's
   * role bounds the job's frames (`settings.maxFramesPerJob`; admins are exempt, the core's
   * absolute bound applies to everyone). With `idempotencyKey`, a submission the same
   * principal already made with that key (within 24 h) returns the first job instead of
   * creating another; the key with a different body is refused (409).
   */
  async submitJob(
    input: unknown,
    principal?: Principal,
    options: SubmitOptions = {},
  ): Promise<Job> {
    const { submission, frames } = prepareSubmission(input);
    const budget = frameBudget(this.settings, principal);
    if (frames.length > budget) {
      throw invalid(
        'frames',
        `the job has ${frames.length} frames; a ${principal?.role ?? 'user'} may submit at most ${budget} frames per job (ask an admin, or split the job)`,
      );
    }
    if (principal?.role === 'user') submission.user = principal.name;
    // A published render: its version is allocated and its output set (`publish.ts`).
    const published =
      submission.publish !== undefined
        ? await preparePublish(this, submission, principal)
        : undefined;
    // From the plugin settings in the store now, not a cache: the hold never depends on
    // which manager received the submission.
    const holdFor = this.plugins ? await this.plugins.holdFor(submission) : [];
    let job: Job;
    try {
      job = await this.store.createJob(submission, frames, {
        holdFor,
        ...(options.idempotencyKey !== undefined
          ? { idempotency: idempotencyOf(options.idempotencyKey, input, principal) }
          : {}),
      });
    } catch (err) {
      await published?.abandon(err);
      throw err;
    }
    await published?.created(job);
    if (holdFor.length > 0) this.plugins?.wake();
    else this.signal.wake();
    return job;
  }

  async jobAction(id: string, action: JobAction): Promise<Job> {
    const job = await this.store.applyJobAction(id, action);
    this.signal.wake();
    return job;
  }

  async updateJob(id: string, changes: JobChanges): Promise<Job> {
    const job = await this.store.updateJob(id, changes);
    this.signal.wake();
    return job;
  }

  async requeueTasks(jobId: string, indexes: number[]) {
    const tasks = await this.store.requeueTasks(jobId, indexes);
    this.signal.wake();
    return tasks;
  }

  /**
   * A worker slot's round trip: report the finished task, then claim the next one, waiting
   * up to `waitMs` for work to appear (long-poll). `abort` fires when the worker hangs up.
   */
  async work(
    worker: string,
    report: TaskReport | undefined,
    claim: boolean,
    waitMs: number,
    abort: AbortSignal,
  ): Promise<{
    reportError: { code: string; message: string } | null;
    task: TaskAssignment | null;
  }> {
    const first = await this.look(worker, report, claim, abort);
    // A finished task can free a limit or release a dependent job: others may have work now.
    if (report) this.signal.wake();
    if (first.task) {
      return {
        reportError: first.reportError,
        task: await this.paths.mapForWorker(first.task, worker),
      };
    }
    if (!claim || waitMs <= 0) return { reportError: first.reportError, task: null };
    const deadline = Date.now() + waitMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0 || abort.aborted) return { reportError: first.reportError, task: null };
      await this.signal.wait(Math.min(left, CLAIM_RECHECK_MS), abort);
      if (abort.aborted) return { reportError: first.reportError, task: null };
      const next = await this.look(worker, undefined, true, abort);
      if (next.task)
        return {
          reportError: first.reportError,
          task: await this.paths.mapForWorker(next.task, worker),
        };
    }
  }

  /**
   * One look at the store for the worker protocol — the report, the claim, or both in one
   * transaction — taking its turn at the claim gate; counted in the metrics. A worker that
   * hung up while this waited its turn still has its report kept, but claims nothing.
   */
  private async look(
    worker: string,
    report: TaskReport | undefined,
    claim: boolean,
    abort: AbortSignal,
  ): Promise<WorkResult> {
    const started = performance.now();
    return this.gate.run(async () => {
      const claiming = claim && !abort.aborted;
      // A worker that hung up before its turn, with nothing to report: nothing to do. (A
      // request that asks for nothing still reaches the store: an unknown worker is a 404.)
      if (!report && claim && !claiming) return { reportError: null, task: undefined };
      const r = await this.store.work(worker, report, claiming);
      this.metrics.work(report, r, claiming, started);
      return r;
    });
  }

  /** One round of house keeping: expired leases, silent workers. */
  async houseKeeping(): Promise<void> {
    const r = await this.metrics.time('leases', () =>
      this.store.expireLeases(this.settings.stallAfterMs),
    );
    if (r.requeued > 0 || r.stalled.length > 0) {
      this.log.warn({ requeued: r.requeued, stalled: r.stalled }, 'house keeping requeued tasks');
      this.signal.wake();
    }
  }

  /**
   * One round of clean-up (bounded: ≈10,000 rows, in short transactions): tasks and logs of
   * jobs deleted longer than `purgeDeletedAfterMs` ago, leftovers of creations a manager
   * abandoned, expired idempotency keys. Returns whether more is left for the next round.
   */
  async purge(): Promise<boolean> {
    const r = await this.metrics.time('purge', () =>
      this.store.purge({ deletedJobsAfterMs: this.settings.purgeDeletedAfterMs }),
    );
    if (r.tasks > 0 || r.logs > 0 || r.creations > 0) {
      this.log.info(
        { tasks: r.tasks, logs: r.logs, jobs: r.jobs, abandonedCreations: r.creations },
        'house keeping purged tasks',
      );
    }
    return r.more;
  }
}

export interface SubmitOptions {
  /** The request's `Idempotency-Key`. */
  idempotencyKey?: string;
}

/** The most frames one job of this principal may have. */
export function frameBudget(settings: ManagerSettings, principal: Principal | undefined): number {
  if (principal?.role === 'admin') return MAX_FRAMES_PER_JOB;
  // Without a principal (`--no-auth`, in-process callers) the user's budget applies.
  const budget = settings.maxFramesPerJob[principal?.role ?? 'user'];
  return Math.min(
    budget ?? settings.maxFramesPerJob.user ?? MAX_FRAMES_PER_JOB,
    MAX_FRAMES_PER_JOB,
  );
}

/** Idempotency keys: printable ASCII, at most 255 characters (a UUID, as the CLI sends, is 36). */
const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,255}$/;

/**
 * A key is the principal's own: the owner is the token (two tokens never share keys). The
 * body hash covers the submission as sent, with object keys sorted, so the same JSON in
 * another key order is the same submission.
 */
function idempotencyOf(
  key: string,
  input: unknown,
  principal: Principal | undefined,
): IdempotencyKey {
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw invalid('Idempotency-Key', 'must be 1 to 255 printable ASCII characters');
  }
  return {
    owner: principal ? `token:${principal.tokenId}` : 'anonymous',
    key,
    bodyHash: createHash('sha256').update(canonicalJson(input)).digest('hex'),
  };
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
