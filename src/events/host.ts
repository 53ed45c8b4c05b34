import type { Logger } from 'pino';
import type { JobSubmission } from '../core/job-spec.js';
import {
  applyConfig,
  defaultConfig,
  type ConfigValues,
  type PluginState,
  type PluginView,
} from '../core/plugin-config.js';
import { prepareSubmission } from '../core/submission.js';
import { notFound, invalid } from '../core/errors.js';
import type { EventType, FarmEvent, Job } from '../core/types.js';
import type { Store } from '../store/contract.js';
import type { EventPlugin, HandlerName, PluginContext, PluginFarm } from './plugin.js';

/** Which handler an event in the log goes to. */
const jobHandlers: Partial<Record<EventType, HandlerName>> = {
  'job.submitted': 'onJobSubmitted',
  'job.started': 'onJobStarted',
  'job.finished': 'onJobFinished',
  'job.requeued': 'onJobRequeued',
  'job.failed': 'onJobFailed',
  'job.suspended': 'onJobSuspended',
  'job.resumed': 'onJobResumed',
  'job.pended': 'onJobPended',
  'job.released': 'onJobReleased',
  'job.deleted': 'onJobDeleted',
  'job.archived': 'onJobArchived',
  'job.error': 'onJobError',
};
const workerHandlers: Partial<Record<EventType, HandlerName>> = {
  'worker.started': 'onWorkerStarted',
  'worker.stopped': 'onWorkerStopped',
  'worker.idle': 'onWorkerIdle',
  'worker.stalled': 'onWorkerStalled',
  'worker.rendering': 'onWorkerRendering',
};

const BATCH = 200;
/**
 * How often every manager re-reads plugin settings without being told to: the safety net for
 * a settings notification that was lost (sent while its listening connection was down).
 */
export const SETTINGS_REREAD_MS = 5_000;

interface Running {
  plugin: EventPlugin;
  state: PluginState;
  config: ConfigValues;
  cursor: number;
  /** Per worker, the job it last started a task of (for onWorkerStartingJob). */
  lastJob: Map<string, string>;
}

export interface PluginHostOptions {
  store: Store;
  plugins: readonly EventPlugin[];
  log: Logger;
  /** How often each plugin looks for new events (ms). */
  pollMs?: number;
  /** Called after a plugin's action may have made work dispatchable (a hold released). */
  onWork?: () => void;
  /**
   * Whether this manager may run `role` now (`plugin:<name>`): with several managers on one
   * database, each plugin's consumer runs on one of them at a time. Default: always.
   */
  lead?: (role: string) => Promise<boolean>;
  /** How often settings are re-read without a notification (ms; default `SETTINGS_REREAD_MS`). */
  settingsRereadMs?: number;
}

/**
 * Runs event plugins: each consumes the store's event log from its own persisted cursor
 * (`plugin:<name>`), so nothing is missed while a manager is down and a handler interrupted
 * by a crash runs again after the restart (at least once).
 */
export class PluginHost {
  private readonly store: Store;
  private readonly log: Logger;
  private readonly pollMs: number;
  private readonly running = new Map<string, Running>();
  private stopped = false;
  private loops: Array<Promise<void>> = [];
  private timers = new Set<NodeJS.Timeout>();
  private wakers = new Set<() => void>();
  private reread: NodeJS.Timeout | undefined;
  private reloading: Promise<void> | undefined;
  private reloadQueued: Promise<void> | undefined;

  constructor(private readonly options: PluginHostOptions) {
    this.store = options.store;
    this.log = options.log;
    this.pollMs = options.pollMs ?? 200;
    const seen = new Set<string>();
    for (const p of options.plugins) {
      if (seen.has(p.name)) throw invalid('plugins', `two event plugins are named ${p.name}`);
      seen.add(p.name);
    }
  }

  /** Loads settings and cursors (a new plugin starts at the end of the log), then starts consuming. */
  async start(): Promise<void> {
    const saved = new Map((await this.store.listPluginSettings()).map((s) => [s.name, s]));
    const latest = await this.store.latestEventSeq();
    for (const plugin of this.options.plugins) {
      const s = saved.get(plugin.name);
      const consumer = `plugin:${plugin.name}`;
      let cursor = await this.store.fetchCursor(consumer);
      if (cursor === undefined) {
        cursor = latest;
        await this.store.saveCursor(consumer, cursor);
      }
      this.running.set(plugin.name, {
        plugin,
        state: s?.state ?? plugin.defaultState ?? 'disabled',
        // Entries added since the configuration was saved get their defaults.
        config: { ...defaultConfig(plugin.config), ...(s?.config ?? {}) },
        cursor,
        lastJob: new Map(),
      });
    }
    for (const r of this.running.values()) this.loops.push(this.consume(r));
    this.reread = setInterval(() => {
      this.reloadSettings().catch((err: unknown) =>
        this.log.warn({ err }, 'could not re-read event plugin settings; trying again later'),
      );
    }, this.options.settingsRereadMs ?? SETTINGS_REREAD_MS);
    this.reread.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.reread);
    this.wake();
    await Promise.all(this.loops);
    await this.reloading?.catch(() => undefined);
    await this.reloadQueued?.catch(() => undefined);
  }

  /**
   * Re-reads every plugin's state and configuration from the store, on every manager whether
   * or not it runs that plugin's consumer: the manager calls it when the store's settings
   * channel says another manager (or this one) saved a change, and the host every
   * `SETTINGS_REREAD_MS` in case a notification was lost. Calls while a read is under way are
   * answered by one more read after it, so a change committed meanwhile is never missed.
   */
  reloadSettings(): Promise<void> {
    if (this.reloadQueued) return this.reloadQueued;
    if (this.reloading) {
      this.reloadQueued = this.reloading
        .catch(() => undefined)
        .then(() => {
          this.reloadQueued = undefined;
          return this.reloadSettings();
        });
      return this.reloadQueued;
    }
    this.reloading = this.readSettings().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async readSettings(): Promise<void> {
    for (const s of await this.store.listPluginSettings()) {
      const r = this.running.get(s.name);
      if (!r) continue;
      r.state = s.state;
      // Entries added since the configuration was saved get their defaults.
      r.config = { ...defaultConfig(r.plugin.config), ...s.config };
    }
  }

  /** Makes every plugin look at the log now (after a commit that appended events). */
  wake(): void {
    for (const w of [...this.wakers]) w();
  }

  /**
   * The plugins whose job-submitted handlers will run for this submission: the job is held
   * until they have (Deadline leaves a window where the job is queued first; Drover does not).
   * Decided from the plugins' states as saved in the store now, never from this manager's
   * cache: with several managers, whichever receives a submission decides alike, even right
   * after a state changed through another (one read of a table of a few rows).
   */
  async holdFor(submission: JobSubmission): Promise<string[]> {
    const saved = new Map((await this.store.listPluginSettings()).map((s) => [s.name, s.state]));
    return [...this.running.values()]
      .filter((r) => {
        const state = saved.get(r.plugin.name) ?? r.plugin.defaultState ?? 'disabled';
        return (
          r.plugin.handlers.onJobSubmitted && applies(state, r.plugin.name, submission.eventOptIns)
        );
      })
      .map((r) => r.plugin.name);
  }

  list(): PluginView[] {
    return [...this.running.values()].map((r) => this.view(r));
  }

  show(name: string): PluginView {
    return this.view(this.get(name));
  }

  /** Validates and saves a plugin's state and configuration changes. */
  async configure(
    name: string,
    changes: { state?: PluginState; config?: Record<string, unknown> },
  ): Promise<PluginView> {
    const r = this.get(name);
    // Changes apply to the saved configuration, which another manager may have changed.
    await this.reloadSettings();
    const config = changes.config
      ? applyConfig(r.plugin.config, r.config, changes.config)
      : r.config;
    const state = changes.state ?? r.state;
    await this.store.savePluginSettings({ name, state, config });
    r.config = config;
    r.state = state;
    this.log.info({ plugin: name, state }, 'event plugin configured');
    return this.view(r);
  }

  /** Runs every global plugin's house-cleaning handler; failures are logged, never thrown. */
  async houseCleaning(): Promise<void> {
    for (const r of this.running.values()) {
      const handler = r.plugin.handlers.onHouseCleaning;
      if (!handler || r.state !== 'global') continue;
      try {
        await handler(this.context(r));
      } catch (err) {
        this.log.error({ err, plugin: r.plugin.name }, 'house-cleaning handler failed');
      }
    }
  }

  private get(name: string): Running {
    const r = this.running.get(name);
    if (!r) throw notFound(`event plugin ${name}`);
    return r;
  }

  private view(r: Running): PluginView {
    const config = { ...r.config };
    for (const e of r.plugin.config)
      if (e.type === 'password' && config[e.key]) config[e.key] = '********';
    return {
      name: r.plugin.name,
      description: r.plugin.description,
      state: r.state,
      config,
      schema: r.plugin.config,
      handlers: Object.keys(r.plugin.handlers),
    };
  }

  private applies(r: Running, eventOptIns: readonly string[]): boolean {
    return applies(r.state, r.plugin.name, eventOptIns);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.timers.delete(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.timers.add(timer);
      this.wakers.add(done);
    });
  }

  private async consume(r: Running): Promise<void> {
    const consumer = `plugin:${r.plugin.name}`;
    while (!this.stopped) {
      let events: FarmEvent[] = [];
      try {
        if (this.options.lead && !(await this.options.lead(consumer))) {
          await this.sleep(this.pollMs * 5);
          continue;
        }
        // Another manager may have moved the cursor while this one did not lead.
        r.cursor = Math.max(r.cursor, (await this.store.fetchCursor(consumer)) ?? r.cursor);
        events = await this.store.listEvents({ after: r.cursor, limit: BATCH });
        for (const e of events) {
          if (this.stopped) return;
          const typed = await this.deliver(r, e);
          const ran = (await this.deliverAny(r, e)) || typed;
          r.cursor = e.seq;
          // After a handler ran, the cursor moves at once: it is not run again after a
          // restart. Events no handler wanted are saved with the batch.
          if (ran) await this.store.saveCursor(consumer, r.cursor);
        }
        if (events.length > 0) await this.store.saveCursor(consumer, r.cursor);
      } catch (err) {
        // The store is unreachable or a handler's own store call failed: try again later
        // from the saved cursor (the event is delivered again).
        this.log.error({ err, plugin: r.plugin.name }, 'event plugin loop failed; retrying');
        await this.sleep(this.pollMs * 5);
        continue;
      }
      if (events.length < BATCH) await this.sleep(this.pollMs);
    }
  }

  /** Delivers one event; returns whether a handler ran. */
  private async deliver(r: Running, e: FarmEvent): Promise<boolean> {
    const h = r.plugin.handlers;
    const name = r.plugin.name;
    const jobHandler = jobHandlers[e.type];
    if (jobHandler && e.jobId) {
      const job = await this.store.fetchJob(e.jobId);
      if (!job) return false;
      if (e.type === 'job.submitted') {
        if (!job.heldFor.includes(name)) return false;
        // Held for this plugin at submission: run it if it still applies, and always let go.
        // "Still applies" is read afresh: the settings notification that enabled the plugin
        // may reach this manager after the job's own wake-up does.
        await this.reloadSettings();
        if (!h.onJobSubmitted || !this.applies(r, job.eventOptIns)) {
          await this.store.releaseHold(job.id, name);
        } else {
          try {
            await h.onJobSubmitted(job, this.context(r));
            await this.store.releaseHold(job.id, name);
          } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            this.log.error(
              { err, plugin: name, jobId: job.id },
              'job-submitted handler failed; the job stays pending',
            );
            await this.store.releaseHold(job.id, name, message);
          }
        }
        this.options.onWork?.();
        return true;
      }
      if (!this.applies(r, job.eventOptIns)) return false;
      return this.guard(r, e, async () => {
        if (jobHandler === 'onJobError') {
          await h.onJobError?.(
            job,
            {
              taskIndex: e.taskIndex,
              worker: e.worker,
              attempt: Number(e.data.attempt ?? 0),
              message: typeof e.data.message === 'string' ? e.data.message : '',
              exitCode: typeof e.data.exitCode === 'number' ? e.data.exitCode : null,
            },
            this.context(r),
          );
        } else {
          await (h[jobHandler] as ((job: Job, ctx: PluginContext) => Promise<void>) | undefined)?.(
            job,
            this.context(r),
          );
        }
      });
    }
    if (r.state !== 'global' || !e.worker) return false;
    if (e.type === 'task.started' && e.jobId && h.onWorkerStartingJob) {
      if (r.lastJob.get(e.worker) === e.jobId) return false;
      r.lastJob.set(e.worker, e.jobId);
      const job = await this.store.fetchJob(e.jobId);
      if (!job) return false;
      const worker = e.worker;
      return this.guard(r, e, () => h.onWorkerStartingJob!(worker, job, this.context(r)));
    }
    const workerHandler = workerHandlers[e.type];
    if (!workerHandler || !h[workerHandler]) return false;
    const worker = e.worker;
    if (workerHandler === 'onWorkerRendering') {
      const job =
        typeof e.data.jobId === 'string' ? await this.store.fetchJob(e.data.jobId) : undefined;
      return this.guard(r, e, () => h.onWorkerRendering!(worker, job, this.context(r)));
    }
    return this.guard(r, e, () =>
      (h[workerHandler] as (w: string, ctx: PluginContext) => Promise<void> | void)(
        worker,
        this.context(r),
      ),
    );
  }

  /** Passes any event to the plugin's `onEvent`; returns whether it ran. */
  private async deliverAny(r: Running, e: FarmEvent): Promise<boolean> {
    const handler = r.plugin.handlers.onEvent;
    if (!handler || r.state === 'disabled') return false;
    if (r.state === 'opt-in') {
      const job = e.jobId ? await this.store.fetchJob(e.jobId) : undefined;
      if (!job || !this.applies(r, job.eventOptIns)) return false;
    }
    return this.guard(r, e, () => handler(e, this.context(r)));
  }

  /** Runs a handler that must never break the farm: a failure is logged and the event passed. */
  private async guard(r: Running, e: FarmEvent, run: () => Promise<void> | void): Promise<boolean> {
    try {
      await run();
    } catch (err) {
      this.log.error(
        { err, plugin: r.plugin.name, event: e.type, seq: e.seq },
        'event handler failed',
      );
    }
    return true;
  }

  private context(r: Running): PluginContext {
    return {
      config: { ...r.config },
      farm: this.farmFor(r.plugin.name),
      log: this.log.child({ plugin: r.plugin.name }),
    };
  }

  private farmFor(plugin: string): PluginFarm {
    const store = this.store;
    return {
      fetchJob: (id) => store.fetchJob(id),
      submitPrerequisiteJob: async (forJobId, input) => {
        const { submission, frames } = prepareSubmission(input);
        const job = await store.createJob(submission, frames, {
          prerequisiteOf: forJobId,
          holdFor: await this.holdFor(submission),
        });
        this.wake();
        this.options.onWork?.();
        return job;
      },
      submitJob: async (input) => {
        const { submission, frames } = prepareSubmission(input);
        const job = await store.createJob(submission, frames, {
          holdFor: await this.holdFor(submission),
        });
        this.wake();
        this.options.onWork?.();
        return job;
      },
      listPathMappings: () => store.listPathMappings(),
      versions: store.versions,
      updateJob: (id, changes) => store.updateJob(id, changes),
      setJobData: (jobId, data) => store.setJobPluginData(jobId, plugin, data),
      readTaskLog: async (jobId, index) => {
        const chunks = [];
        for (let after = 0; ;) {
          const page = await store.readTaskLog(jobId, index, { after });
          if (page.chunks.length === 0) break;
          chunks.push(...page.chunks);
          after = page.chunks[page.chunks.length - 1]!.seq;
        }
        return chunks;
      },
    };
  }
}

/** Whether a plugin in `state` handles a job with these opt-ins. */
function applies(state: PluginState, plugin: string, eventOptIns: readonly string[]): boolean {
  return state === 'global' || (state === 'opt-in' && eventOptIns.includes(plugin));
}
