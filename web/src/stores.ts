/**
 * The farm as the monitor holds it: the job list and the worker list, each loaded once per
 * stream connection and then kept current from the live events by refetching only what an
 * event names (debounced). Pages read them with `useJobs()` / `useWorkers()`.
 */
import { useEffect, useSyncExternalStore } from 'react';
import { api, type FarmEvent, type Job, type Worker } from './api.js';
import { Debouncer, feed } from './live.js';

/** Refetch the named jobs one by one up to this many; past it, the whole list (one request). */
const SINGLE_FETCH_MAX = 40;
/** Workers change state on heartbeats without an event (last seen): re-read them this often. */
const WORKER_REFRESH_MS = 5_000;

const hidden = new Set(['archived', 'deleted']);

interface Snapshot<T> {
  items: T[];
  loaded: boolean;
  error: string | null;
}

abstract class LiveList<T> {
  protected snapshot: Snapshot<T> = { items: [], loaded: false, error: null };
  private readonly subscribers = new Set<() => void>();
  private loadedGeneration = 0;
  private loading: Promise<void> | undefined;

  constructor() {
    feed.watch(() => {
      if (this.subscribers.size > 0) this.sync();
    });
    feed.onEvent((e) => {
      if (this.subscribers.size > 0 && this.loadedGeneration > 0) this.onEvent(e);
    });
  }

  protected abstract fetchAll(): Promise<T[]>;
  protected abstract onEvent(event: FarmEvent): void;

  /** The first subscriber arrived / the last one left (start or stop timers). */
  protected activate(): void {}
  protected deactivate(): void {}

  subscribe = (fn: () => void): (() => void) => {
    this.subscribers.add(fn);
    if (this.subscribers.size === 1) {
      this.activate();
      // Events were not followed while nobody looked: show what we had and refresh it.
      if (this.loadedGeneration === feed.generation && this.loadedGeneration > 0) {
        void this.reload();
      }
    }
    this.sync();
    return () => {
      this.subscribers.delete(fn);
      if (this.subscribers.size === 0) this.deactivate();
    };
  };

  getSnapshot = (): Snapshot<T> => this.snapshot;

  /** Loads everything once per stream connection (never before the stream is open). */
  private sync(): void {
    if (feed.generation === 0 || feed.generation === this.loadedGeneration) return;
    this.loadedGeneration = feed.generation;
    void this.reload();
  }

  reload(): Promise<void> {
    this.loading ??= this.fetchAll()
      .then((items) => this.publish({ items, loaded: true, error: null }))
      .catch((err: unknown) =>
        this.publish({ ...this.snapshot, error: err instanceof Error ? err.message : String(err) }),
      )
      .finally(() => {
        this.loading = undefined;
      });
    return this.loading;
  }

  protected publish(next: Snapshot<T>): void {
    this.snapshot = next;
    for (const fn of this.subscribers) fn();
  }
}

class JobList extends LiveList<Job> {
  private readonly changed = new Debouncer<string>(250, (ids) => void this.refetch(ids));

  protected fetchAll(): Promise<Job[]> {
    return api.listJobs();
  }

  protected onEvent(event: FarmEvent): void {
    if (event.jobId) this.changed.add(event.jobId);
  }

  private async refetch(ids: Set<string>): Promise<void> {
    if (ids.size > SINGLE_FETCH_MAX) return this.reload();
    const results = await Promise.all(
      [...ids].map((id) =>
        api.getJob(id).then(
          (job) => ({ id, job }),
          () => ({ id, job: undefined }),
        ),
      ),
    );
    const byId = new Map(this.snapshot.items.map((j) => [j.id, j]));
    for (const { id, job } of results) {
      if (!job || hidden.has(job.state)) byId.delete(id);
      else byId.set(id, job);
    }
    this.publish({ ...this.snapshot, items: [...byId.values()] });
  }
}

class WorkerList extends LiveList<Worker> {
  private readonly changed = new Debouncer<true>(300, () => void this.reload());
  private timer: number | undefined;

  protected fetchAll(): Promise<Worker[]> {
    return api.listWorkers();
  }

  protected onEvent(event: FarmEvent): void {
    if (event.worker || event.type.startsWith('task.')) this.changed.add(true);
  }

  protected override activate(): void {
    this.timer ??= window.setInterval(() => void this.reload(), WORKER_REFRESH_MS);
  }

  protected override deactivate(): void {
    window.clearInterval(this.timer);
    this.timer = undefined;
  }
}

export const jobStore = new JobList();
export const workerStore = new WorkerList();

export function useJobs(): Snapshot<Job> {
  return useSyncExternalStore(jobStore.subscribe, jobStore.getSnapshot);
}

export function useWorkers(): Snapshot<Worker> {
  return useSyncExternalStore(workerStore.subscribe, workerStore.getSnapshot);
}

/** Opens the live feed for the life of the app. */
export function useFeed(): void {
  useEffect(() => feed.start(), []);
}
