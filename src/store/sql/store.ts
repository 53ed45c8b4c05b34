import { setTimeout as sleep } from 'node:timers/promises';
import type { Role, TokenInfo } from '../../core/auth.js';
import { sql, type Kysely } from 'kysely';
import { DroverError, insufficientStorage, notFound } from '../../core/errors.js';
import type { PathMapping } from '../../core/path-mapping.js';
import type { JobAction, JobChanges, JobSubmission, TaskState } from '../../core/job-spec.js';
import type {
  FarmEvent,
  Job,
  LimitUsage,
  Task,
  TaskAssignment,
  TaskLogChunk,
  Worker,
} from '../../core/types.js';
import type {
  Heartbeat,
  HeartbeatReply,
  LogAppend,
  TaskReport,
  WorkerRegistration,
} from '../../core/worker-protocol.js';
import {
  DEFAULT_LEASE_TTL_MS,
  MAX_PAGE,
  SETTINGS_CHANNEL,
  WORK_CHANNEL,
  type StoreHealth,
  type EventQuery,
  type JobFilter,
  type LogQuery,
  type NewEvent,
  type Page,
  type Store,
  type StoreOptions,
  type WorkResult,
  type CreateJobOptions,
  type IdempotencyKey,
  type PluginSettings,
  type PurgeOptions,
  type PurgeResult,
  type TaskCommand,
  IDEMPOTENCY_KEY_TTL_MS,
} from '../contract.js';
import type { Dialect } from './dialect.js';
import { lagsCounters, report, requeueExpired, requeueWorkerTasks, work } from './dispatch.js';
import { EventLog, beginEvents, flushEvents, recordEvent } from './events.js';
import {
  TASK_INSERT_BATCH,
  applyAction,
  changeJob,
  checkDependencies,
  initialTaskState,
  insertJob,
  insertJobRow,
  insertTasks,
  releaseHold,
  requeueChosenTasks,
  setPluginData,
  taskCountOf,
} from './jobs.js';
import { newJobId } from './ids.js';
import { settleIdleRendering, settleLockedJob } from './job-flow.js';
import { commandTasks, undeleteJob } from './task-commands.js';
import * as leases from './leases.js';
import * as tokens from './tokens.js';
import * as workers from './workers.js';
import * as pathMappings from './path-mappings.js';
import * as pluginSettings from './plugin-settings.js';
import {
  abandonCreation,
  abandonStaleCreations,
  creationAbandoned,
  creationState,
  deleteExpiredKeys,
  deleteLogBatch,
  deleteTaskBatch,
  deletedJobsToPurge,
  dropCreation,
  finishCreation,
  markJobPurged,
  nextAbandonedCreation,
  releaseKey,
  reserveKey,
  startCreation,
  touchCreation,
} from './staging.js';
import { jobFromRow, num, taskFromRow } from './rows.js';
import { LocalNotifier, type Notifier, type NotifyListener } from './notifier.js';
import type { Database } from './schema.js';
import { isDiskFull } from './disk-full.js';
import { recordLeaseLoss } from './lease-loss.js';
import { appendLog } from './task-log.js';
import { isUniqueViolation, retryDelayMs } from './transient.js';
import { SqlFleetStore } from './fleets.js';
import type { StoreKit } from './kit.js';
import { SqlVersionStore } from './versions.js';
import { addCountDeltas } from './job-counts.js';

/**
 * Runs a worker's call; when it is refused for a lease that is no longer current (which it
 * is before any write), runs `record` in the same transaction and returns the refusal for
 * the caller to throw after COMMIT, instead of rolling the record back with it.
 */
async function refusingLateCalls(
  call: () => Promise<void>,
  record: () => Promise<void>,
): Promise<DroverError | undefined> {
  try {
    await call();
    return undefined;
  } catch (err) {
    if (!(err instanceof DroverError && err.code === 'lease_lost')) throw err;
    await record();
    return err;
  }
}

/** How long `appendEvent` waits for its event to be published (PostgreSQL). */
const APPEND_WAIT_MS = 10_000;

/** How long `health()` waits for `select 1`. */
const HEALTH_TIMEOUT_MS = 2000;

/** Jobs with more tasks than this are created in stages (see `createJob`). */
export const STAGE_ABOVE_TASKS = 5000;
/**
 * How long one staging transaction inserts batches before it commits and yields: well inside
 * the ≈100 ms a request may wait. A 1,000-row INSERT took ≈3 ms in raw SQLite here and
 * ≈10–20 ms through Kysely with row building.
 */
const STAGE_SLICE_MS = 50;
/** How long a retried submission waits for the first one's staged creation to finish. */
const PRIOR_WAIT_MS = 20_000;
const PRIOR_POLL_MS = 100;
/** Rows one purge transaction deletes at most, and rows one `purge` call deletes at most. */
const PURGE_BATCH = 2000;
const PURGE_MAX_ROWS = 10_000;
/** Deleted jobs one `purge` call looks at. */
const PURGE_JOBS_PER_CALL = 20;

/** Lets I/O callbacks (requests that arrived) run before the next transaction starts. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

interface TxOptions {
  /**
   * Notify `WORK_CHANNEL` after commit (default): the change may have made work dispatchable,
   * so long-polling claims on this and other managers look again. Off for the frequent
   * writes that never do (heartbeats, log chunks).
   */
  wakes?: boolean;
}

/**
 * The store over Kysely: one implementation of the contract for both dialects. Each public
 * method that changes state is one transaction.
 */
export class SqlStore implements Store {
  readonly kind: Dialect;
  private readonly db: Kysely<Database>;
  private readonly now: () => number;
  private readonly leaseTtlMs: number;
  private readonly notifier: Notifier;
  /** The event log's read side and cursors (`events.ts`). */
  private readonly events: EventLog;
  /**
   * When a write last failed because the disk is full (wall-clock ms), until a write
   * succeeds again. While set, `health()` reports the store degraded. Workers heartbeat every
   * few seconds, so once space is freed the next heartbeat clears it.
   */
  private diskFullSince: number | undefined;
  readonly fleets: SqlFleetStore;
  readonly versions: SqlVersionStore;

  /** `notifier`: how notifications reach other processes (default: this process only). */
  constructor(
    db: Kysely<Database>,
    dialect: Dialect,
    options: StoreOptions = {},
    notifier: Notifier = new LocalNotifier(),
  ) {
    this.db = db;
    this.kind = dialect;
    this.now = options.now ?? Date.now;
    this.leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
    this.notifier = notifier;
    this.events = new EventLog(db, dialect);
    const kit: StoreKit = {
      db,
      kind: dialect,
      now: this.now,
      tx: (fn, options) => this.tx(fn, options),
      write: (statement) => this.write(statement),
      settingsChanged: () => this.settingsChanged(),
    };
    this.fleets = new SqlFleetStore(kit);
    this.versions = new SqlVersionStore(kit);
  }

  /**
   * Runs `fn` as one transaction (READ COMMITTED on PostgreSQL; see `dispatch.ts` for how the
   * SQL stays correct under it). Deadlocks are run again, and so is a transaction that lost
   * its connection before COMMIT was sent (once): see `retryDelayMs`.
   */
  private async tx<T>(
    fn: (db: Kysely<Database>, now: number) => Promise<T>,
    options: TxOptions = {},
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let commitSent = false;
      try {
        const result = await this.db.transaction().execute(async (trx) => {
          beginEvents(trx);
          const r = await fn(trx, this.now());
          await flushEvents(trx, this.kind);
          commitSent = true;
          return r;
        });
        this.diskFullSince = undefined;
        if (options.wakes !== false) this.wake();
        return result;
      } catch (err) {
        if (isDiskFull(err)) throw this.diskFull(err);
        const delay = retryDelayMs(err, this.kind, attempt, commitSent);
        if (delay === undefined) throw err;
        await sleep(delay);
      }
    }
  }

  /** Notes a write refused for a full disk; returns the error the caller should see. */
  private diskFull(err: unknown): Error {
    this.diskFullSince ??= Date.now();
    const e = insufficientStorage(
      `${this.kind}: ${err instanceof Error ? err.message : String(err)}`,
    );
    e.cause = err;
    return e;
  }

  /** A single-statement write outside `tx`: a full disk is told apart, as there. */
  private async write<T>(statement: Promise<T>): Promise<T> {
    try {
      const r = await statement;
      this.diskFullSince = undefined;
      return r;
    } catch (err) {
      if (isDiskFull(err)) throw this.diskFull(err);
      throw err;
    }
  }

  /** Best effort: a lost wake-up costs a long-polling claim one poll interval. */
  private wake(): void {
    this.notifier.notify(WORK_CHANNEL).catch(() => undefined);
  }

  /** After a committed settings change; best effort: managers also re-read every few seconds. */
  private settingsChanged(): void {
    this.notifier.notify(SETTINGS_CHANNEL).catch(() => undefined);
  }

  // ── jobs ──────────────────────────────────────────────────────────────────

  /**
   * A job of up to `STAGE_ABOVE_TASKS` tasks is created in one transaction. A larger one is
   * staged (`staging.ts`): its tasks go in batch by batch, each batch a transaction of about
   * `STAGE_SLICE_MS`, yielding to the event loop between them, and the job row comes last.
   * On SQLite every query waits for the one connection, so one transaction holding it for
   * seconds stalled every request: a 1,000,000-task job held it 9–17 s.
   */
  async createJob(
    submission: JobSubmission,
    frames: readonly number[],
    options: CreateJobOptions = {},
  ): Promise<Job> {
    const taskCount = taskCountOf(frames, submission.chunkSize);
    const staged = taskCount > STAGE_ABOVE_TASKS;
    const key = options.idempotency;
    for (let round = 1; ; round++) {
      const id = newJobId(this.now());
      const first = await this.tx(
        async (db, now) => {
          if (key) {
            const prior = await reserveKey(db, now, IDEMPOTENCY_KEY_TTL_MS, key, id);
            if (prior !== undefined) return { prior };
          }
          if (!staged) {
            await insertJob(db, this.kind, now, submission, frames, options, id);
            return {};
          }
          await checkDependencies(db, this.kind, submission);
          const taskState = await initialTaskState(db, submission);
          await startCreation(db, now, id);
          return { taskState };
        },
        { wakes: !staged },
      );
      if (first.prior !== undefined && key) {
        const job = await this.priorJob(first.prior, key);
        if (job) return job;
        // Its creation was abandoned and the key released: this submission makes the job.
        if (round >= 3) throw creationAbandoned(first.prior);
        continue;
      }
      if (first.taskState !== undefined) {
        await this.stageJob(id, submission, frames, options, taskCount, first.taskState);
      }
      return (await this.fetchJob(id))!;
    }
  }

  private async stageJob(
    id: string,
    submission: JobSubmission,
    frames: readonly number[],
    options: CreateJobOptions,
    taskCount: number,
    taskState: TaskState,
  ): Promise<void> {
    try {
      for (let next = 0; next < taskCount;) {
        next = await this.tx(
          async (db, now) => {
            await touchCreation(db, now, id);
            const started = performance.now();
            let i = next;
            do {
              const to = Math.min(i + TASK_INSERT_BATCH, taskCount);
              await insertTasks(db, id, frames, submission.chunkSize, i, to, taskState);
              i = to;
            } while (i < taskCount && performance.now() - started < STAGE_SLICE_MS);
            return i;
          },
          { wakes: false },
        );
        // Requests that arrived meanwhile get the connection before the next batch.
        await yieldToEventLoop();
      }
      await this.tx(async (db, now) => {
        await finishCreation(db, id);
        await checkDependencies(db, this.kind, submission);
        await insertJobRow(db, this.kind, now, id, submission, frames, options, taskState);
      });
    } catch (err) {
      // Nothing was created: house keeping deletes the tasks inserted so far.
      await this.tx((db) => abandonCreation(db, id), { wakes: false }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * The job an earlier submission with the same idempotency key created; waits (polling, up
   * to `PRIOR_WAIT_MS`) while its staged creation is under way. Undefined when that creation
   * was abandoned: the key is released and the caller creates the job itself.
   */
  private async priorJob(jobId: string, key: IdempotencyKey): Promise<Job | undefined> {
    const deadline = performance.now() + PRIOR_WAIT_MS;
    for (;;) {
      const job = await this.fetchJob(jobId);
      if (job) return job;
      const state = await creationState(this.db, this.now(), jobId);
      if (state !== 'running') {
        // The creation may have finished between the two reads: look once more.
        const done = await this.fetchJob(jobId);
        if (done) return done;
        await this.tx(
          async (db) => {
            if (state === 'abandoned') await abandonCreation(db, jobId);
            await releaseKey(db, key, jobId);
          },
          { wakes: false },
        );
        return undefined;
      }
      if (performance.now() > deadline) {
        throw new DroverError(
          'unavailable',
          `job ${jobId}, submitted earlier with Idempotency-Key "${key.key}", is still being created; try again shortly`,
        );
      }
      await sleep(PRIOR_POLL_MS);
    }
  }

  async releaseHold(jobId: string, plugin: string, failure?: string): Promise<Job | undefined> {
    await this.tx((db, now) => releaseHold(db, this.kind, now, jobId, plugin, failure));
    return this.fetchJob(jobId);
  }

  async setJobPluginData(jobId: string, plugin: string, data: unknown): Promise<void> {
    await this.tx((db) => setPluginData(db, this.kind, jobId, plugin, data), { wakes: false });
  }

  async fetchJob(id: string): Promise<Job | undefined> {
    const row = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return undefined;
    await addCountDeltas(this.db, [row]);
    const [deps, bad] = await Promise.all([
      this.db
        .selectFrom('job_dependencies')
        .select('depends_on')
        .where('job_id', '=', id)
        .execute(),
      this.badWorkers([id]),
    ]);
    const job = jobFromRow(row, bad.get(id) ?? []);
    job.dependencies = deps.map((d) => d.depends_on);
    return job;
  }

  /** Bad-worker lists of the given jobs. */
  private async badWorkers(ids: readonly string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (ids.length === 0) return out;
    const rows = await this.db
      .selectFrom('job_worker_errors as e')
      .innerJoin('jobs as j', 'j.id', 'e.job_id')
      .select(['e.job_id', 'e.worker'])
      .where('e.job_id', 'in', ids)
      .where('j.bad_worker_errors', '>', 0)
      .whereRef('e.errors', '>=', 'j.bad_worker_errors')
      .execute();
    for (const r of rows) out.set(r.job_id, [...(out.get(r.job_id) ?? []), r.worker]);
    return out;
  }

  async listJobs(filter: JobFilter): Promise<Job[]> {
    let q = this.db.selectFrom('jobs').selectAll();
    if (filter.states && filter.states.length > 0) q = q.where('state', 'in', filter.states);
    else if (!filter.all) q = q.where('state', 'not in', ['archived', 'deleted']);
    if (filter.user) q = q.where('user_name', '=', filter.user);
    const rows = await q
      .orderBy('submitted_at', 'desc')
      .orderBy('id', 'desc')
      .limit(Math.min(filter.limit ?? 100, MAX_PAGE))
      .offset(filter.offset ?? 0)
      .execute();
    await addCountDeltas(this.db, rows);
    const ids = rows.map((r) => r.id);
    const [bad, deps] = await Promise.all([
      this.badWorkers(ids),
      ids.length === 0
        ? Promise.resolve([])
        : this.db.selectFrom('job_dependencies').selectAll().where('job_id', 'in', ids).execute(),
    ]);
    return rows.map((r) => {
      const job = jobFromRow(r, bad.get(r.id) ?? []);
      job.dependencies = deps.filter((d) => d.job_id === r.id).map((d) => d.depends_on);
      return job;
    });
  }

  async updateJob(id: string, changes: JobChanges): Promise<Job> {
    await this.tx((db, now) => changeJob(db, this.kind, now, id, changes));
    return (await this.fetchJob(id))!;
  }

  async applyJobAction(id: string, action: JobAction, reason?: string): Promise<Job> {
    await this.tx((db, now) => applyAction(db, this.kind, now, id, action, reason));
    return (await this.fetchJob(id))!;
  }

  async listTasks(jobId: string, page: Page): Promise<Task[]> {
    await this.requireJob(jobId);
    const rows = await this.db
      .selectFrom('tasks')
      .selectAll()
      .where('job_id', '=', jobId)
      .where('idx', '>=', page.offset ?? 0)
      .orderBy('idx')
      .limit(Math.min(page.limit ?? MAX_PAGE, MAX_PAGE))
      .execute();
    return rows.map(taskFromRow);
  }

  async requeueTasks(jobId: string, indexes: readonly number[]): Promise<Task[]> {
    await this.tx((db, now) => requeueChosenTasks(db, this.kind, now, jobId, indexes));
    const rows = await this.db
      .selectFrom('tasks')
      .selectAll()
      .where('job_id', '=', jobId)
      .where('idx', 'in', indexes)
      .orderBy('idx')
      .execute();
    return rows.map(taskFromRow);
  }

  async undeleteJob(id: string): Promise<Job> {
    await this.tx((db, now) => undeleteJob(db, this.kind, now, id));
    return (await this.fetchJob(id))!;
  }

  async commandTasks(
    jobId: string,
    indexes: readonly number[] | 'all',
    command: TaskCommand,
  ): Promise<Task[]> {
    await this.tx((db, now) => commandTasks(db, this.kind, now, jobId, indexes, command));
    let q = this.db.selectFrom('tasks').selectAll().where('job_id', '=', jobId);
    if (indexes !== 'all') q = q.where('idx', 'in', indexes.length > 0 ? indexes : [-1]);
    const rows = await q.orderBy('idx').limit(MAX_PAGE).execute();
    return rows.map(taskFromRow);
  }

  async readTaskLog(
    jobId: string,
    index: number,
    query: LogQuery,
  ): Promise<{ attempt: number; chunks: TaskLogChunk[] }> {
    const task = await this.db
      .selectFrom('tasks')
      .select('attempt')
      .where('job_id', '=', jobId)
      .where('idx', '=', index)
      .executeTakeFirst();
    if (!task) throw notFound(`task ${jobId}:${index}`);
    const attempt = query.attempt ?? num(task.attempt);
    const rows = await this.db
      .selectFrom('task_logs')
      .select(['attempt', 'seq', 'at', 'stream', 'text'])
      .where('job_id', '=', jobId)
      .where('idx', '=', index)
      .where('attempt', '=', attempt)
      .where('seq', '>', query.after ?? 0)
      .orderBy('seq')
      .limit(Math.min(query.limit ?? MAX_PAGE, MAX_PAGE))
      .execute();
    return {
      attempt,
      chunks: rows.map((r) => ({
        attempt: num(r.attempt),
        seq: num(r.seq),
        at: num(r.at),
        stream: r.stream as TaskLogChunk['stream'],
        text: r.text,
      })),
    };
  }

  private async requireJob(id: string): Promise<void> {
    const row = await this.db
      .selectFrom('jobs')
      .select('id')
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw notFound(`job ${id}`);
  }

  // ── workers ───────────────────────────────────────────────────────────────

  async registerWorker(reg: WorkerRegistration): Promise<Worker> {
    await this.tx((db, now) => workers.register(db, this.kind, now, reg));
    return (await this.fetchWorker(reg.name))!;
  }

  heartbeat(name: string, hb: Heartbeat): Promise<Omit<HeartbeatReply, 'heartbeatIntervalMs'>> {
    return this.tx((db, now) => workers.heartbeat(db, now, name, hb, this.leaseTtlMs), {
      wakes: false,
    });
  }

  fetchWorker(name: string): Promise<Worker | undefined> {
    return workers.fetch(this.db, name);
  }

  listWorkers(): Promise<Worker[]> {
    return workers.list(this.db);
  }

  async setWorkerEnabled(name: string, enabled: boolean): Promise<Worker> {
    await this.tx((db, now) => workers.setEnabled(db, now, name, enabled));
    return (await this.fetchWorker(name))!;
  }

  async markWorkerStopped(name: string): Promise<Worker> {
    await this.tx((db, now) => workers.markStopped(db, this.kind, now, name));
    return (await this.fetchWorker(name))!;
  }

  // ── dispatch ──────────────────────────────────────────────────────────────

  async claimTask(workerName: string): Promise<TaskAssignment | undefined> {
    return (await this.work(workerName, undefined, true)).task;
  }

  async reportTask(workerName: string, r: TaskReport): Promise<void> {
    // A refused report changes nothing but is recorded (`recordLeaseLoss`); the refusal
    // reaches the caller after that record commits.
    let settle: readonly string[] = [];
    const refused = await this.tx((db, now) =>
      refusingLateCalls(
        async () => {
          ({ settleAfterCommit: settle } = await report(db, this.kind, now, workerName, r));
        },
        () =>
          recordLeaseLoss(db, this.kind, now, workerName, r.lease, {
            kind: 'report',
            outcome: r.outcome,
          }),
      ),
    );
    await this.settleJobs(settle);
    if (refused) throw refused;
  }

  /**
   * A worker's report on the task it finished and its claim of the next one, in one
   * transaction: one round trip and one commit per task (DESIGN.md: ≈1.6× the throughput of
   * separate calls). A refused report does not stop the claim.
   */
  async work(
    workerName: string,
    r: TaskReport | undefined,
    wantTask: boolean,
  ): Promise<WorkResult> {
    const { settleAfterCommit, ...result } = await this.tx(
      (db, now) =>
        work(db, this.kind, now, workerName, r, wantTask, { leaseTtlMs: this.leaseTtlMs }),
      // A claim alone makes no work dispatchable; a report may (slots, limits, dependents).
      { wakes: r !== undefined },
    );
    await this.settleJobs(settleAfterCommit);
    return result;
  }

  /**
   * PostgreSQL: moves the jobs a committed call completed tasks of without its turn, when
   * their state lags their counters (`dispatch.ts`). The call itself has committed, so a
   * failure here is not its failure: house keeping settles the job within a round.
   */
  private async settleJobs(ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      try {
        if (await lagsCounters(this.db, id)) {
          await this.tx((db, now) => settleLockedJob(db, this.kind, now, id));
        }
      } catch {
        // Left to house keeping (`settleIdleRendering`).
      }
    }
  }

  async appendTaskLog(workerName: string, append: LogAppend): Promise<void> {
    const refused = await this.tx(
      (db, now) =>
        refusingLateCalls(
          () => appendLog(db, this.kind, now, workerName, append),
          () => recordLeaseLoss(db, this.kind, now, workerName, append.lease, { kind: 'log' }),
        ),
      { wakes: false },
    );
    if (refused) throw refused;
  }

  // ── house keeping ─────────────────────────────────────────────────────────

  async expireLeases(stallAfterMs: number): Promise<{ requeued: number; stalled: string[] }> {
    return this.tx(async (db, now) => {
      let requeued = 0;
      const stalled: string[] = [];
      const silent = await db
        .selectFrom('workers')
        .selectAll()
        .where('state', 'in', ['idle', 'rendering'])
        .where('last_seen_at', '<', now - stallAfterMs)
        .execute();
      for (const w of silent) {
        await db
          .updateTable('workers')
          .set({ state: 'stalled' })
          .where('name', '=', w.name)
          .execute();
        await recordEvent(db, now, {
          type: 'worker.stalled',
          worker: w.name,
          data: { lastSeenAt: num(w.last_seen_at) },
        });
        stalled.push(w.name);
        requeued += await requeueWorkerTasks(db, this.kind, now, w.name, 'worker stalled');
      }
      requeued += await requeueExpired(db, this.kind, now);
      await settleIdleRendering(db, this.kind, now);
      return { requeued, stalled };
    });
  }

  async purge(options: PurgeOptions): Promise<PurgeResult> {
    const budget = options.maxRows ?? PURGE_MAX_ROWS;
    const out: PurgeResult = { tasks: 0, logs: 0, jobs: [], creations: 0, keys: 0, more: false };
    const left = () => budget - out.tasks - out.logs - out.keys;
    const batch = () => Math.max(1, Math.min(PURGE_BATCH, left()));
    const run = <T>(fn: (db: Kysely<Database>, now: number) => Promise<T>) =>
      this.tx(fn, { wakes: false });

    // Creations whose manager died: their tasks, then the creation row.
    await run((db, now) => abandonStaleCreations(db, now));
    for (;;) {
      if (left() <= 0) return { ...out, more: true };
      const id = await run((db) => nextAbandonedCreation(db));
      if (id === undefined) break;
      const n = await run((db) => deleteTaskBatch(db, id, batch()));
      out.tasks += n;
      if (n === 0) {
        await run((db) => dropCreation(db, id));
        out.creations++;
      }
      await yieldToEventLoop();
    }

    // Deleted jobs, `deletedJobsAfterMs` after deletion: logs, then tasks, then the mark.
    const due = await run((db, now) =>
      deletedJobsToPurge(db, now - options.deletedJobsAfterMs, PURGE_JOBS_PER_CALL),
    );
    for (const id of due) {
      for (;;) {
        if (left() <= 0) return { ...out, more: true };
        const logs = await run((db) => deleteLogBatch(db, id, batch()));
        out.logs += logs;
        const tasks = logs > 0 ? 0 : await run((db) => deleteTaskBatch(db, id, batch()));
        out.tasks += tasks;
        await yieldToEventLoop();
        if (logs === 0 && tasks === 0) break;
      }
      await run((db, now) => markJobPurged(db, now, id));
      out.jobs.push(id);
    }

    if (left() <= 0) return { ...out, more: true };
    out.keys += await run((db, now) =>
      deleteExpiredKeys(db, now - IDEMPOTENCY_KEY_TTL_MS, batch()),
    );
    out.more = due.length === PURGE_JOBS_PER_CALL || left() <= 0;
    return out;
  }

  // ── limits ────────────────────────────────────────────────────────────────

  async setLimit(name: string, max: number): Promise<LimitUsage> {
    const limit = await this.tx(async (db) => {
      await db
        .insertInto('limits')
        .values({ name, max, in_use: 0 })
        .onConflict((oc) => oc.column('name').doUpdateSet({ max }))
        .execute();
      const row = await db
        .selectFrom('limits')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirstOrThrow();
      return { name: row.name, max: num(row.max), inUse: num(row.in_use) };
    });
    this.settingsChanged();
    return limit;
  }

  async listLimits(): Promise<LimitUsage[]> {
    const rows = await this.db.selectFrom('limits').selectAll().orderBy('name').execute();
    return rows.map((r) => ({ name: r.name, max: num(r.max), inUse: num(r.in_use) }));
  }

  // ── event plugins ─────────────────────────────────────────────────────────

  listPluginSettings(): Promise<PluginSettings[]> {
    return pluginSettings.list(this.db);
  }

  async savePluginSettings(settings: Omit<PluginSettings, 'updatedAt'>): Promise<PluginSettings> {
    const saved = await this.write(pluginSettings.save(this.db, this.now(), settings));
    this.settingsChanged();
    return saved;
  }

  // ── path mapping ──────────────────────────────────────────────────────────

  listPathMappings(): Promise<PathMapping[]> {
    return pathMappings.list(this.db);
  }

  async addPathMapping(rule: Omit<PathMapping, 'id'>): Promise<PathMapping> {
    const added = await this.write(pathMappings.add(this.db, rule));
    this.settingsChanged();
    return added;
  }

  async removePathMapping(id: number): Promise<void> {
    const removed = await this.write(pathMappings.remove(this.db, id));
    if (removed === 0) throw notFound(`path mapping ${id}`);
    this.settingsChanged();
  }

  // ── event log ─────────────────────────────────────────────────────────────

  listEvents(query: EventQuery): Promise<FarmEvent[]> {
    return this.events.list(query);
  }

  /**
   * On PostgreSQL the event has its seq once it is published: waits for that, up to
   * `APPEND_WAIT_MS` (only a long transaction in the database makes it wait at all).
   */
  async appendEvent(event: NewEvent): Promise<FarmEvent> {
    const id = await this.tx(async (db, now) => {
      await recordEvent(db, now, event);
      return flushEvents(db, this.kind);
    });
    const appended = await this.events.fetchPublished(id!, APPEND_WAIT_MS);
    if (!appended) {
      throw new DroverError(
        'unavailable',
        `event ${event.type} was appended, but a long-running transaction on the database holds its publication back; consumers will see it when that transaction ends`,
      );
    }
    return appended;
  }

  latestEventSeq(): Promise<number> {
    return this.events.latestSeq();
  }

  fetchCursor(consumer: string): Promise<number | undefined> {
    return this.events.fetchCursor(consumer);
  }

  async saveCursor(consumer: string, seq: number): Promise<void> {
    await this.write(this.events.saveCursor(consumer, seq));
  }

  // ── access tokens ─────────────────────────────────────────────────────────

  async createToken(token: {
    name: string;
    role: Role;
    hash: string;
    workers?: string;
  }): Promise<TokenInfo> {
    const info = tokens.newToken(token, this.now());
    try {
      await this.tx((db) => tokens.insert(db, info, token.hash), { wakes: false });
    } catch (err) {
      if (isUniqueViolation(err)) throw tokens.nameTaken(info.name);
      throw err;
    }
    // A manager may have cached this hash as unknown.
    this.settingsChanged();
    return info;
  }

  findToken(hash: string): Promise<TokenInfo | undefined> {
    return tokens.find(this.db, hash);
  }

  listTokens(): Promise<TokenInfo[]> {
    return tokens.list(this.db);
  }

  async revokeToken(id: string): Promise<TokenInfo> {
    const info = await this.tx((db, now) => tokens.revoke(db, now, id), { wakes: false });
    this.settingsChanged();
    return info;
  }

  // ── several managers ──────────────────────────────────────────────────────

  tryLead(role: string, holder: string, ttlMs: number): Promise<boolean> {
    return this.write(leases.tryLead(this.db, this.now(), role, holder, ttlMs));
  }

  onNotify(listener: NotifyListener): () => void {
    return this.notifier.listen(listener);
  }

  async notify(channel: string): Promise<void> {
    await this.notifier.notify(channel);
  }

  async health(): Promise<StoreHealth> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), HEALTH_TIMEOUT_MS);
    });
    // Never rejects, so a query that answers after the timeout leaves nothing unhandled.
    const answer = sql`select 1`.execute(this.db).then(
      () => 'ok' as const,
      (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
    );
    try {
      const r = await Promise.race([answer, timedOut]);
      if (r === 'ok') {
        const ms = (performance.now() - started).toFixed(1);
        const answered = `select 1 answered in ${ms} ms`;
        if (this.diskFullSince !== undefined) {
          // Reads still work, but nothing can be written: not a manager to send work to.
          const since = new Date(this.diskFullSince).toISOString();
          return {
            ok: false,
            degraded: 'disk_full',
            detail: `${this.kind}: the disk is full: writes are refused (507) since ${since} until space is freed and a write succeeds; reads work (${answered})`,
          };
        }
        return { ok: true, detail: `${this.kind}: ${answered}` };
      }
      if (r === 'timeout') {
        return { ok: false, detail: `${this.kind}: no answer within ${HEALTH_TIMEOUT_MS} ms` };
      }
      return { ok: false, detail: `${this.kind}: ${r.message}` };
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.notifier.close();
    await this.db.destroy();
  }
}
