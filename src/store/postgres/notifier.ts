import type pg from 'pg';
import { SETTINGS_CHANNEL, WORK_CHANNEL } from '../contract.js';
import { checkChannel, deliver, type Notifier, type NotifyListener } from '../sql/notifier.js';

/**
 * Drover's one PostgreSQL notification channel; the logical channel travels as the payload,
 * so one LISTEN serves every channel (`drover_work`, a plugin's own, …).
 */
export const PG_CHANNEL = 'drover';

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;

/**
 * LISTEN/NOTIFY between the managers sharing one PostgreSQL database. Listening uses one
 * dedicated connection (a pooled one would lose its LISTEN when returned), opened on the
 * first `listen` and reopened with backoff whenever it drops; after a reconnect every
 * channel seen so far is delivered once, since notifications sent meanwhile are lost.
 * Sending goes through the pool and is coalesced per channel: while one NOTIFY is in
 * flight, any number of further calls send one more after it (a wake-up needs no count).
 */
export class PgNotifier implements Notifier {
  private readonly listeners = new Set<NotifyListener>();
  /**
   * Channels delivered after a reconnect (what was sent meanwhile is lost): the work and
   * settings channels always, so a manager looks for work and re-reads its settings at once.
   */
  private readonly seen = new Set<string>([WORK_CHANNEL, SETTINGS_CHANNEL]);
  private readonly dead = new WeakSet<pg.Client>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly queued = new Map<string, Promise<void>>();
  private client: pg.Client | undefined;
  private connecting: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private backoffMs = MIN_BACKOFF_MS;
  private connectedBefore = false;
  private closed = false;

  /**
   * `newClient`: a client for the listening connection (not yet connected);
   * `send`: sends one NOTIFY of `PG_CHANNEL` with the payload given.
   */
  constructor(
    private readonly newClient: () => pg.Client,
    private readonly send: (payload: string) => Promise<void>,
  ) {}

  notify(channel: string): Promise<void> {
    checkChannel(channel);
    const queued = this.queued.get(channel);
    if (queued) return queued;
    const flying = this.inFlight.get(channel);
    if (flying) {
      const next = flying
        .catch(() => undefined)
        .then(() => {
          this.queued.delete(channel);
          return this.notify(channel);
        });
      this.queued.set(channel, next);
      return next;
    }
    const sending = this.send(channel).finally(() => this.inFlight.delete(channel));
    this.inFlight.set(channel, sending);
    return sending;
  }

  listen(listener: NotifyListener): () => void {
    this.listeners.add(listener);
    this.ensureListening();
    return () => void this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    this.listeners.clear();
    await this.connecting;
    const client = this.client;
    this.client = undefined;
    if (client) {
      this.dead.add(client);
      await client.end().catch(() => undefined);
    }
    await Promise.allSettled([...this.inFlight.values(), ...this.queued.values()]);
  }

  private ensureListening(): void {
    if (this.closed || this.client || this.connecting || this.retry) return;
    this.connecting = this.open().finally(() => {
      this.connecting = undefined;
    });
  }

  private async open(): Promise<void> {
    const client = this.newClient();
    client.on('notification', (msg) => {
      if (msg.channel !== PG_CHANNEL || !msg.payload) return;
      this.seen.add(msg.payload);
      deliver(this.listeners, msg.payload);
    });
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${PG_CHANNEL}`);
    } catch {
      this.lost(client);
      return;
    }
    if (this.dead.has(client)) return;
    if (this.closed) {
      this.dead.add(client);
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.backoffMs = MIN_BACKOFF_MS;
    if (this.connectedBefore) for (const channel of this.seen) deliver(this.listeners, channel);
    this.connectedBefore = true;
  }

  /** The listening connection dropped (or never came up): reconnect after a backoff. */
  private lost(client: pg.Client): void {
    if (this.dead.has(client)) return;
    this.dead.add(client);
    if (this.client === client) this.client = undefined;
    client.end().catch(() => undefined);
    if (this.closed) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.ensureListening();
    }, delay);
    this.retry.unref();
  }
}
