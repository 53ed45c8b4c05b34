import { isBuiltinApp } from '../core/app-settings.js';
import type { Job, Worker } from '../core/types.js';

/** How long one look at the workers answers for (a job view is this stale at most). */
export const OFFERS_TTL_MS = 2_000;

/** The pending reason shown for a queued job no worker can run. */
export function noWorkerReason(plugin: string): string {
  return `no worker offers plugin ${plugin}`;
}

/**
 * Which application plugins the farm's workers offer now, so a queued job no worker can run
 * says so (`pendingReason`) instead of waiting silently. Computed when jobs are shown, not
 * stored: nothing to keep in step as workers come and go, and the store is asked only when
 * a job shown names a plugin that is not built in (every worker runs those), at most once
 * per `OFFERS_TTL_MS` however many jobs and callers.
 */
export class PluginOffers {
  #at = -Infinity;
  #offered: ReadonlySet<string> = new Set();
  #reading: Promise<ReadonlySet<string>> | undefined;

  constructor(
    private readonly listWorkers: () => Promise<Worker[]>,
    private readonly now: () => number = Date.now,
  ) {}

  /** The plugins offered by workers that can take work now (enabled, idle or rendering). */
  async offered(): Promise<ReadonlySet<string>> {
    if (this.now() - this.#at < OFFERS_TTL_MS) return this.#offered;
    this.#reading ??= this.listWorkers()
      .then((workers) => {
        const offered = new Set<string>();
        for (const w of workers) {
          if (w.state !== 'idle' && w.state !== 'rendering') continue;
          for (const app of w.apps) offered.add(app);
        }
        this.#offered = offered;
        this.#at = this.now();
        return offered;
      })
      .finally(() => {
        this.#reading = undefined;
      });
    return this.#reading;
  }

  /**
   * The jobs as shown: a queued job whose plugin no worker online offers gets the pending
   * reason `no worker offers plugin X` (its state stays queued: it runs as soon as such a
   * worker registers). Other jobs are returned as they are.
   */
  async explain<J extends Pick<Job, 'state' | 'plugin' | 'pendingReason'>>(
    jobs: J[],
  ): Promise<J[]> {
    const waiting = (j: J) =>
      j.state === 'queued' && j.pendingReason === '' && !isBuiltinApp(j.plugin);
    if (!jobs.some(waiting)) return jobs;
    const offered = await this.offered();
    return jobs.map((j) =>
      waiting(j) && !offered.has(j.plugin) ? { ...j, pendingReason: noWorkerReason(j.plugin) } : j,
    );
  }
}
