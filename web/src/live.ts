/**
 * The live feed: one EventSource on the manager's event stream (`/api/v1/events/stream`)
 * for the whole monitor.
 *
 * The stream says `ready` each time it (re)connects. Pages load their data on every `ready`
 * (`useFeedGeneration`), never before the first: the stream's cursor is then already at the
 * log's head, so nothing that happens between the load and the first event is missed, and
 * after a reconnect (a manager restart, a network drop) everything shown is refetched.
 */
import { useEffect, useRef, useSyncExternalStore } from 'react';
import type { EventType, FarmEvent } from './api.js';
import { api } from './api.js';

/** Every event type, with the group the event log filters by; TS checks it is complete. */
export const eventGroups: Record<EventType, 'job' | 'task' | 'worker' | 'farm'> = {
  'job.submitted': 'job',
  'job.started': 'job',
  'job.finished': 'job',
  'job.requeued': 'job',
  'job.failed': 'job',
  'job.suspended': 'job',
  'job.resumed': 'job',
  'job.pended': 'job',
  'job.released': 'job',
  'job.deleted': 'job',
  'job.archived': 'job',
  'job.updated': 'job',
  'job.error': 'job',
  'task.started': 'task',
  'task.completed': 'task',
  'task.failed': 'task',
  'task.requeued': 'task',
  'task.lease_lost': 'task',
  'worker.started': 'worker',
  'worker.stopped': 'worker',
  'worker.idle': 'worker',
  'worker.rendering': 'worker',
  'worker.stalled': 'worker',
  'worker.updated': 'worker',
  'house.cleaning': 'farm',
  'task.interrupted': 'task',
  'fleet.changed': 'farm',
  'fleet.decision': 'farm',
  'fleet.launched': 'farm',
  'fleet.draining': 'farm',
  'fleet.terminated': 'farm',
  'fleet.error': 'farm',
  'fleet.paused': 'farm',
  'version.created': 'farm',
  'version.updated': 'farm',
  'version.ready': 'farm',
  'version.incomplete': 'farm',
  'version.failed': 'farm',
  'version.approved': 'farm',
  'version.rejected': 'farm',
};
export const eventTypeList = Object.keys(eventGroups) as EventType[];

export type FeedStatus = 'connecting' | 'live' | 'reconnecting';
type Listener = (event: FarmEvent) => void;

/** How long to wait before reopening a stream the browser gave up on (HTTP error). */
const REOPEN_MS = 2_000;

class LiveFeed {
  status: FeedStatus = 'connecting';
  /** Incremented on every `ready`: a new connection whose state must be reloaded. */
  generation = 0;
  /** The newest event seq seen (or the log's head when the stream opened). */
  lastSeq = 0;
  private source: EventSource | undefined;
  private readonly listeners = new Set<Listener>();
  private readonly watchers = new Set<() => void>();
  private reopenTimer: number | undefined;

  start(): void {
    if (this.source) return;
    // The browser resends Last-Event-ID by itself on its own reconnects; a stream opened
    // anew (after an HTTP error) says where it was with `after`.
    const source = new EventSource(api.eventStreamUrl(this.lastSeq > 0 ? this.lastSeq : undefined));
    this.source = source;
    source.addEventListener('ready', (e: MessageEvent<string>) => {
      const { seq } = JSON.parse(e.data) as { seq: number };
      if (seq > this.lastSeq || this.generation === 0) this.lastSeq = seq;
      this.generation += 1;
      this.setStatus('live');
    });
    const onEvent = (e: MessageEvent<string>) => {
      const event = JSON.parse(e.data) as FarmEvent;
      this.lastSeq = event.seq;
      for (const l of this.listeners) l(event);
    };
    for (const type of eventTypeList) source.addEventListener(type, onEvent);
    source.onerror = () => {
      this.setStatus('reconnecting');
      if (source.readyState === EventSource.CLOSED) {
        this.source = undefined;
        // The browser does not say why (a 401 looks like any refusal): one plain request
        // does, and brings up the token banner when that is the reason.
        void api.listLimits().catch(() => undefined);
        window.clearTimeout(this.reopenTimer);
        this.reopenTimer = window.setTimeout(() => this.start(), REOPEN_MS);
      }
    };
  }

  /** Watchers are told of every `ready` (a new generation) and every status change. */
  private setStatus(status: FeedStatus): void {
    const changed = this.status !== status;
    this.status = status;
    if (changed || status === 'live') for (const w of this.watchers) w();
  }

  onEvent(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  watch = (watcher: () => void): (() => void) => {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  };
}

export const feed = new LiveFeed();

/** The stream's status, for the header. */
export function useFeedStatus(): FeedStatus {
  return useSyncExternalStore(feed.watch, () => feed.status);
}

/** 0 until the stream first opens, then one more on every (re)connect: load data on change. */
export function useFeedGeneration(): number {
  return useSyncExternalStore(feed.watch, () => feed.generation);
}

/** Calls `handler` for every live event while the component is mounted. */
export function useLiveEvents(handler: Listener): void {
  const ref = useRef(handler);
  useEffect(() => {
    ref.current = handler;
  });
  useEffect(() => feed.onEvent((e) => ref.current(e)), []);
}

/**
 * Collects keys and hands them over in one batch `ms` after the first one arrived: a farm
 * emits events in bursts (a job of 1,000 tasks finishing), and one refetch per burst is what
 * keeps the page responsive.
 */
export class Debouncer<K> {
  private keys = new Set<K>();
  private timer: number | undefined;

  constructor(
    private readonly ms: number,
    private readonly flush: (keys: Set<K>) => void,
  ) {}

  add(key: K): void {
    this.keys.add(key);
    this.timer ??= window.setTimeout(() => {
      const keys = this.keys;
      this.keys = new Set();
      this.timer = undefined;
      this.flush(keys);
    }, this.ms);
  }

  cancel(): void {
    window.clearTimeout(this.timer);
    this.timer = undefined;
    this.keys = new Set();
  }
}
