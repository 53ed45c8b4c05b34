import { setTimeout as sleep } from 'node:timers/promises';
import type { Role, TokenInfo } from '../../core/auth.js';
import type { Kysely } from 'kysely';
import { insufficientStorage, notFound } from '../../core/errors.js';
import type { PathMapping } from '../../core/path-mapping.js';
import type { JobAction, JobChanges, JobSubmission } from '../../core/job-spec.js';
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
  type PluginSettings,
  type PurgeOptions,
  type PurgeResult,
  type TaskCommand,
} from '../contract.js';
import type { Dialect } from './dialect.js';
import { EventLog, appendEvent, beginEvents, flushEvents } from './events.js';
import * as jobCreation from './job-creation.js';
import * as jobStore from './job-store.js';
import * as housekeeping from './housekeeping.js';
import * as limits from './limits.js';
import { health } from './health.js';
import * as leases from './leases.js';
import * as tokens from './tokens.js';
import * as workers from './workers.js';
import * as pathMappings from './path-mappings.js';
import * as pluginSettings from './plugin-settings.js';
import * as workerCalls from './worker-calls.js';
import { LocalNotifier, type Notifier, type NotifyListener } from './notifier.js';
import type { Database } from './schema.js';
import { isDiskFull } from './disk-full.js';
import { retryDelayMs } from './transient.js';
import { SqlFleetStore } from './fleets.js';
import type { StoreKit } from './kit.js';
import { SqlVersionStore } from './versions.js';

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
  /** What the store families (`job-store.ts`, `fleets.ts`, …) get from the store. */
  private readonly kit: StoreKit;

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
    this.kit = {
      db,
      kind: dialect,
      now: this.now,
      tx: (fn, options) => this.tx(fn, options),
      write: (statement) => this.write(statement),
      settingsChanged: () => this.settingsChanged(),
      leaseTtlMs: this.leaseTtlMs,
    };
    this.fleets = new SqlFleetStore(this.kit);
    this.versions = new SqlVersionStore(this.kit);
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

  createJob(
    submission: JobSubmission,
    frames: readonly number[],
    options: CreateJobOptions = {},
  ): Promise<Job> {
    return jobCreation.createJob(this.kit, submission, frames, options);
  }

  releaseHold(jobId: string, plugin: string, failure?: string): Promise<Job | undefined> {
    return jobStore.releaseHold(this.kit, jobId, plugin, failure);
  }

  setJobPluginData(jobId: string, plugin: string, data: unknown): Promise<void> {
    return jobStore.setJobPluginData(this.kit, jobId, plugin, data);
  }

  fetchJob(id: string): Promise<Job | undefined> {
    return jobStore.fetchJob(this.kit, id);
  }

  listJobs(filter: JobFilter): Promise<Job[]> {
    return jobStore.listJobs(this.kit, filter);
  }

  updateJob(id: string, changes: JobChanges): Promise<Job> {
    return jobStore.updateJob(this.kit, id, changes);
  }

  applyJobAction(id: string, action: JobAction, reason?: string): Promise<Job> {
    return jobStore.applyJobAction(this.kit, id, action, reason);
  }

  listTasks(jobId: string, page: Page): Promise<Task[]> {
    return jobStore.listTasks(this.kit, jobId, page);
  }

  requeueTasks(jobId: string, indexes: readonly number[]): Promise<Task[]> {
    return jobStore.requeueTasks(this.kit, jobId, indexes);
  }

  undeleteJob(id: string): Promise<Job> {
    return jobStore.undeleteJob(this.kit, id);
  }

  commandTasks(
    jobId: string,
    indexes: readonly number[] | 'all',
    command: TaskCommand,
  ): Promise<Task[]> {
    return jobStore.commandTasks(this.kit, jobId, indexes, command);
  }

  readTaskLog(
    jobId: string,
    index: number,
    query: LogQuery,
  ): Promise<{ attempt: number; chunks: TaskLogChunk[] }> {
    return jobStore.readTaskLog(this.kit, jobId, index, query);
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

  reportTask(workerName: string, r: TaskReport): Promise<void> {
    return workerCalls.reportTask(this.kit, workerName, r);
  }

  work(workerName: string, r: TaskReport | undefined, wantTask: boolean): Promise<WorkResult> {
    return workerCalls.work(this.kit, workerName, r, wantTask);
  }

  appendTaskLog(workerName: string, append: LogAppend): Promise<void> {
    return workerCalls.appendTaskLog(this.kit, workerName, append);
  }

  // ── house keeping ─────────────────────────────────────────────────────────

  expireLeases(stallAfterMs: number): Promise<{ requeued: number; stalled: string[] }> {
    return housekeeping.expireLeases(this.kit, stallAfterMs);
  }

  purge(options: PurgeOptions): Promise<PurgeResult> {
    return housekeeping.purge(this.kit, options);
  }

  // ── limits ────────────────────────────────────────────────────────────────

  setLimit(name: string, max: number): Promise<LimitUsage> {
    return limits.setLimit(this.kit, name, max);
  }

  listLimits(): Promise<LimitUsage[]> {
    return limits.listLimits(this.kit);
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

  appendEvent(event: NewEvent): Promise<FarmEvent> {
    return appendEvent(this.kit, this.events, event);
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

  createToken(token: {
    name: string;
    role: Role;
    hash: string;
    workers?: string;
  }): Promise<TokenInfo> {
    return tokens.create(this.kit, token);
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

  health(): Promise<StoreHealth> {
    return health(this.kit, this.diskFullSince);
  }

  async close(): Promise<void> {
    await this.notifier.close();
    await this.db.destroy();
  }
}
