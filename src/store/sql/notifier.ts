import { invalid } from '../../core/errors.js';

/** Called with the channel a notification was sent on. */
export type NotifyListener = (channel: string) => void;

/**
 * Wake-ups between the processes sharing one store: "something changed on `channel`, look
 * again". A notification is a hint, never data: a listener re-reads the store, and one that
 * must not miss a change also polls (notifications sent while a connection is down are lost).
 */
export interface Notifier {
  notify(channel: string): Promise<void>;
  listen(listener: NotifyListener): () => void;
  close(): Promise<void>;
}

const CHANNEL = /^[A-Za-z0-9_.:-]{1,100}$/;

export function checkChannel(channel: string): void {
  if (!CHANNEL.test(channel)) {
    throw invalid('channel', 'use 1-100 letters, digits and _ . : - characters');
  }
}

/** Delivers to every listener, isolating them from each other's exceptions. */
export function deliver(listeners: ReadonlySet<NotifyListener>, channel: string): void {
  for (const listener of [...listeners]) {
    try {
      listener(channel);
    } catch {
      // A listener's failure is its own; the others still hear the notification.
    }
  }
}

/** One process, one store (SQLite): notifications stay in process. */
export class LocalNotifier implements Notifier {
  private readonly listeners = new Set<NotifyListener>();

  notify(channel: string): Promise<void> {
    checkChannel(channel);
    // Delivered after the caller's current work, like a notification from the database.
    setImmediate(() => deliver(this.listeners, channel));
    return Promise.resolve();
  }

  listen(listener: NotifyListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  close(): Promise<void> {
    this.listeners.clear();
    return Promise.resolve();
  }
}
