import type { Logger } from 'pino';
import { prepareSubmission } from '../core/submission.js';
import type { PluginHost } from '../events/host.js';
import { PathMapper } from './path-mapper.js';
import type { JobAction, JobChanges } from '../core/job-spec.js';
import type { Principal } from '../core/auth.js';
import type { Job } from '../core/types.js';
import type { TaskAssignment } from '../core/types.js';
import type { TaskReport } from '../core/worker-protocol.js';
import type { Store } from '../store/contract.js';
import type { ManagerSettings } from './config.js';
import { WorkSignal } from './work-signal.js';

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
  readonly paths: PathMapper;

  constructor(
    readonly store: Store,
    readonly settings: ManagerSettings,
    readonly log: Logger,
  ) {
    this.paths = new PathMapper(store);
  }

  /** Submits a job; a user token submits as itself, whatever the body says. */
  async submitJob(input: unknown, principal?: Principal): Promise<Job> {
    const { submission, frames } = prepareSubmission(input);
    if (principal?.role === 'user') submission.user = principal.name;
    const holdFor = this.plugins?.holdFor(submission) ?? [];
    const job = await this.store.createJob(submission, frames, { holdFor });
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
    const first = await this.store.work(worker, report, claim);
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
      const next = await this.store.work(worker, undefined, true);
      if (next.task)
        return {
          reportError: first.reportError,
          task: await this.paths.mapForWorker(next.task, worker),
        };
    }
  }

  /** One round of house keeping: expired leases, silent workers. */
  async houseKeeping(): Promise<void> {
    const r = await this.store.expireLeases(this.settings.stallAfterMs);
    if (r.requeued > 0 || r.stalled.length > 0) {
      this.log.warn({ requeued: r.requeued, stalled: r.stalled }, 'house keeping requeued tasks');
      this.signal.wake();
    }
  }
}
