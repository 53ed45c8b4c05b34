import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { FarmEvent } from '../../core/types.js';
import { parseInput } from '../../core/validate.js';
import type { Farm } from '../farm.js';

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

const streamQuery = z.object({ after: z.coerce.number().int().min(0).optional() });

interface Connection {
  res: ServerResponse;
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

  constructor(
    private readonly farm: Farm,
    private readonly pollMs: number,
  ) {}

  get size(): number {
    return this.connections.size;
  }

  /** Starts streaming to `res` from `after` (undefined: from `head`, the log's newest seq). */
  open(res: ServerResponse, after: number | undefined, head: number): void {
    // A cursor past the head means the log was reset (a new store): start from its head.
    const cursor = after === undefined || after > head ? head : after;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: ${RETRY_MS}\nevent: ready\ndata: ${JSON.stringify({ seq: head })}\n\n`);
    const conn: Connection = { res, cursor, blockedSince: null };
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
  }

  private stopTimers(): void {
    clearInterval(this.timer);
    clearInterval(this.heartbeat);
    this.timer = undefined;
    this.heartbeat = undefined;
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

/** Registers `GET /events/stream` (under the API prefix) and ends open streams on close. */
export function streamRoutes(
  app: FastifyInstance,
  farm: Farm,
  options: { pollMs?: number } = {},
): void {
  const hub = new EventStreamHub(farm, options.pollMs ?? STREAM_POLL_MS);
  // Open streams would keep `app.close()` waiting forever: end them first.
  app.addHook('preClose', (done) => {
    hub.close();
    done();
  });

  app.get('/events/stream', async (req, reply) => {
    const q = parseInput(streamQuery, req.query, 'query');
    // The browser sends back the last id we gave it; anything else is ignored, not refused.
    const header = req.headers['last-event-id'];
    const fromHeader =
      typeof header === 'string' && /^\d{1,15}$/.test(header) ? Number(header) : undefined;
    if (hub.size >= MAX_CONNECTIONS) {
      return reply.status(503).send({
        error: { code: 'unavailable', message: 'too many open event streams; try again later' },
      });
    }
    const head = await farm.store.latestEventSeq();
    // The stream outlives this handler: Fastify must not send a reply of its own.
    reply.hijack();
    hub.open(reply.raw, fromHeader ?? q.after, head);
  });
}
