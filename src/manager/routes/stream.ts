import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DroverError } from '../../core/errors.js';
import type { FarmEvent } from '../../core/types.js';
import type { Farm } from '../farm.js';
import type { Handlers } from '../http/serve.js';

/**
 * The farm's event log as a live stream (Server-Sent Events) for the web monitor:
 *
 *     GET /api/v1/events/stream[?after=SEQ]      (or the `Last-Event-ID` header)
 *
 * Every event goes out as `id: <seq>`, `event: <type>`, `data: <the event as JSON>`. A browser's
 * EventSource sends the last id it saw when it reconnects, so a dropped connection or a
 * manager restart loses nothing: the store is the truth and the stream is a cursor over it.
 * Each connection also gets one `event: ready` (`{"seq": <head of the log>}`) when it opens;
 * the monitor refetches what it shows on it, because the state may have moved on while it
 * was disconnected.
 *
 * One poller serves every connection: connections that are caught up share one cursor and one
 * query per tick; a connection resuming from an older id reads its own pages until it joins
 * them. Buffering is bounded by construction: a connection whose socket is not draining is not
 * written to (its cursor stays put and it catches up from the store once it drains), and one
 * that stays blocked is closed; its browser reconnects from its last id.
 */

/** How often the poller reads the log (a farm appends events in bursts; 250 ms feels live). */
export const STREAM_POLL_MS = 250;
/** Events read per query (per distinct cursor per tick). */
export const STREAM_PAGE = 500;
/** A comment line this often keeps proxies and the browser from timing the stream out. */
export const STREAM_HEARTBEAT_MS = 15_000;
/** A connection whose socket has not drained for this long is closed. */
const STALLED_CLIENT_MS = 60_000;
/** The browser waits this long before reconnecting (EventSource `retry:`). */
const RETRY_MS = 2_000;
/** Hard bound on open streams per manager. */
const MAX_CONNECTIONS = 1_000;
/**
 * Open streams one token may hold: a monitor needs one per browser tab, so one token cannot
 * take every slot and lock the admin's monitor out.
 */
export const MAX_STREAMS_PER_TOKEN = 16;
/**
 * How often open streams re-check their tokens: a revoked token's stream ends within this
 * plus the token cache's time (`CACHE_MS`).
 */
const RECHECK_MS = 1_000;

interface Connection {
  res: ServerResponse;
  /** The token the stream was opened with (undefined: a manager without authentication). */
  secret: string | undefined;
  tokenId: string;
  /** The last seq written to this connection. */
  cursor: number;
  /** Set while the socket's buffer is full; nothing is written until it drains. */
  blockedSince: number | null;
}

/** Formats one event as an SSE message. */
export function sseMessage(event: FarmEvent): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

class EventStreamHub {
  private readonly connections = new Set<Connection>();
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;

  private recheck: NodeJS.Timeout | undefined;

  constructor(
    private readonly farm: Farm,
    private readonly pollMs: number,
    /** Whether a token is still valid (undefined: no authentication). */
    private readonly tokenValid: ((secret: string) => Promise<boolean>) | undefined,
  ) {}

  /** Open streams of one token. */
  countFor(tokenId: string): number {
    let n = 0;
    for (const c of this.connections) if (c.tokenId === tokenId) n++;
    return n;
  }

  get size(): number {
    return this.connections.size;
  }

  /** Starts streaming to `res` from `after` (undefined: from `head`, the log's newest seq). */
  open(
    res: ServerResponse,
    after: number | undefined,
    head: number,
    token: { secret: string | undefined; id: string },
  ): void {
    // A cursor past the head means the log was reset (a new store): start from its head.
    const cursor = after === undefined || after > head ? head : after;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: ${RETRY_MS}\nevent: ready\ndata: ${JSON.stringify({ seq: head })}\n\n`);
    const conn: Connection = {
      res,
      secret: token.secret,
      tokenId: token.id,
      cursor,
      blockedSince: null,
    };
    this.connections.add(conn);
    res.on('close', () => this.drop(conn));
    res.on('drain', () => {
      conn.blockedSince = null;
    });
    this.ensureRunning();
  }

  private drop(conn: Connection): void {
    this.connections.delete(conn);
    if (this.connections.size === 0) this.stopTimers();
  }

  private ensureRunning(): void {
    if (this.closed) return;
    this.timer ??= setInterval(() => void this.tick(), this.pollMs);
    this.heartbeat ??= setInterval(() => {
      for (const c of this.connections) if (c.blockedSince === null) c.res.write(': ping\n\n');
    }, STREAM_HEARTBEAT_MS);
    if (this.tokenValid) this.recheck ??= setInterval(() => void this.recheckTokens(), RECHECK_MS);
  }

  /** Ends the streams whose token was revoked since they opened. */
  private async recheckTokens(): Promise<void> {
    const valid = this.tokenValid;
    if (!valid) return;
    const verdicts = new Map<string, Promise<boolean>>();
    for (const c of [...this.connections]) {
      if (c.secret === undefined) continue;
      let verdict = verdicts.get(c.secret);
      if (!verdict) {
        verdict = valid(c.secret).catch(() => true);
        verdicts.set(c.secret, verdict);
      }
      if (!(await verdict)) {
        c.res.end('event: revoked\ndata: {"reason":"the token was revoked"}\n\n');
        this.drop(c);
      }
    }
  }

  private stopTimers(): void {
    clearInterval(this.timer);
    clearInterval(this.heartbeat);
    clearInterval(this.recheck);
    this.timer = undefined;
    this.heartbeat = undefined;
    this.recheck = undefined;
  }

  /** One round: one query per distinct cursor among the connections that can take data. */
  private async tick(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      let again = true;
      // A full page means more is waiting: read on at once instead of waiting a tick.
      while (again && !this.closed) {
        again = false;
        const byCursor = new Map<number, Connection[]>();
        const now = Date.now();
        for (const c of this.connections) {
          if (c.blockedSince !== null) {
            if (now - c.blockedSince > STALLED_CLIENT_MS) c.res.destroy();
            continue;
          }
          const group = byCursor.get(c.cursor);
          if (group) group.push(c);
          else byCursor.set(c.cursor, [c]);
        }
        for (const [after, group] of byCursor) {
          const events = await this.farm.store.listEvents({ after, limit: STREAM_PAGE });
          if (events.length === 0) continue;
          const text = events.map(sseMessage).join('');
          const last = events[events.length - 1]!.seq;
          for (const c of group) {
            if (!this.connections.has(c)) continue;
            c.cursor = last;
            if (!c.res.write(text)) c.blockedSince = Date.now();
          }
          if (events.length === STREAM_PAGE) again = true;
        }
      }
    } catch (err) {
      this.farm.log.warn({ err }, 'event stream poll failed; retrying');
    } finally {
      this.polling = false;
    }
  }

  close(): void {
    this.closed = true;
    this.stopTimers();
    for (const c of this.connections) c.res.end();
    this.connections.clear();
  }
}

/**
 * The `eventStream` handler (`GET /events/stream`); open streams end when the server closes.
 * `tokenValid` re-checks the tokens of open streams (undefined: no authentication).
 */
export function streamHandlers(
  app: FastifyInstance,
  farm: Farm,
  options: { pollMs?: number; tokenValid?: (secret: string) => Promise<boolean> } = {},
): Pick<Handlers, 'eventStream'> {
  const hub = new EventStreamHub(farm, options.pollMs ?? STREAM_POLL_MS, options.tokenValid);
  // Open streams would keep `app.close()` waiting forever: end them first.
  app.addHook('preClose', (done) => {
    hub.close();
    done();
  });

  return {
    eventStream: async ({ query, request, reply, principal }) => {
      // The browser sends back the last id we gave it; anything else is ignored, not refused.
      const header = request.headers['last-event-id'];
      const fromHeader =
        typeof header === 'string' && /^\d{1,15}$/.test(header) ? Number(header) : undefined;
      const tokenId = principal?.tokenId ?? '';
      if (hub.size >= MAX_CONNECTIONS) {
        throw new DroverError('unavailable', 'too many open event streams; try again later');
      }
      if (tokenId !== '' && hub.countFor(tokenId) >= MAX_STREAMS_PER_TOKEN) {
        throw new DroverError(
          'unavailable',
          `this token has ${MAX_STREAMS_PER_TOKEN} event streams open already; close one`,
        );
      }
      const head = await farm.store.latestEventSeq();
      // The stream outlives this handler: Fastify must not send a reply of its own.
      reply.hijack();
      hub.open(reply.raw, fromHeader ?? query.after, head, {
        secret: tokenId === '' ? undefined : tokenSecret(request),
        id: tokenId,
      });
      return undefined;
    },
  };
}

/** The secret the stream was opened with (header or `?token=`), to re-check it later. */
function tokenSecret(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice(7).trim() || undefined;
  const q = (request.query as Record<string, unknown> | undefined)?.token;
  return typeof q === 'string' ? q : undefined;
}
