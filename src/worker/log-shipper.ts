import { DroverError, isTemporary } from '../core/errors.js';
import type { LogAppendInput } from '../core/worker-protocol.js';
import { backoffDelay, sleep } from './backoff.js';
import { LogBuffer, type LogBatch, type LogStream } from './log-buffer.js';

/**
 * Sends one task's output and progress to the manager in batches: every `flushMs`, or
 * sooner once `flushBytes` are waiting, at most one request in flight. While the manager is
 * unreachable the output stays in a bounded LogBuffer and is sent when it is back — or,
 * with a `spool`, it goes to disk (one batch per failed request and per flush interval
 * while backing off), and is sent from there, oldest first, before anything newer.
 * Batches are numbered (`LogBatch`); a failed one is sent again as it was, under its number.
 */

/** One lease's log batches on disk (`Spool.logSpool`). */
export interface LogSpool {
  /** Batches are waiting on disk. */
  pending(): boolean;
  /** Appends one batch (at most one request's worth of chunks) after the others. */
  write(batch: LogBatch): void;
  /** The oldest batch. */
  peek(): LogBatch | undefined;
  /** Removes the oldest batch. */
  shift(): void;
}

export interface LogShipperOptions {
  lease: string;
  /** POST /workers/:name/logs; throws a DroverError. */
  send: (body: LogAppendInput) => Promise<unknown>;
  /** The manager answered 409 lease_lost: the task is no longer ours. */
  onLeaseLost: () => void;
  /** Any other failure (logging; `not_found` means the manager lost the worker). */
  onError?: (error: unknown) => void;
  flushMs?: number;
  flushBytes?: number;
  maxBytes?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Keep unsent output on disk instead of memory (see the file comment). */
  spool?: LogSpool;
}

export const DEFAULT_LOG_FLUSH_MS = 250;
export const DEFAULT_LOG_FLUSH_BYTES = 32 * 1024;
const MAX_STATUS_CHARS = 512;

export class LogShipper {
  readonly #options: LogShipperOptions;
  readonly #buffer: LogBuffer;
  readonly #flushBytes: number;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #progress: number | undefined;
  #status: string | undefined;
  /** Progress or status changed since the last request that reached the manager. */
  #progressDirty = false;
  #failures = 0;
  #retryAt = 0;
  #closed = false;
  #leaseLost = false;
  /** The next batch's number. */
  #nextBatch = 1;
  /** Without a spool: the batch whose request failed, sent again before anything newer. */
  #retry: LogBatch | undefined;

  constructor(options: LogShipperOptions) {
    this.#options = options;
    this.#buffer = new LogBuffer({ maxBytes: options.maxBytes });
    this.#flushBytes = options.flushBytes ?? DEFAULT_LOG_FLUSH_BYTES;
  }

  get leaseLost(): boolean {
    return this.#leaseLost;
  }

  start(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => {
      if (Date.now() >= this.#retryAt) void this.flush();
      else this.#spill();
    }, this.#options.flushMs ?? DEFAULT_LOG_FLUSH_MS);
  }

  append(stream: LogStream, text: string): void {
    if (this.#leaseLost) return;
    this.#buffer.append(stream, text);
    if (this.#buffer.size < this.#flushBytes) return;
    if (Date.now() >= this.#retryAt) void this.flush();
    else this.#spill();
  }

  /** Output is waiting, in memory or on disk. */
  get hasUnsent(): boolean {
    return (
      !this.#buffer.isEmpty ||
      this.#progressDirty ||
      this.#retry !== undefined ||
      !!this.#options.spool?.pending()
    );
  }

  /** The buffered chunks as the next numbered batch (no number when there are none). */
  #takeBatch(): LogBatch {
    const chunks = this.#buffer.take();
    return chunks.length > 0 ? { batch: this.#nextBatch++, chunks } : { chunks };
  }

  /**
   * Moves the memory buffer to the spool while the manager is unreachable. Never while a
   * request is in flight: if it fails, its chunks go to disk first, keeping the order.
   */
  #spill(): void {
    const spool = this.#options.spool;
    if (!spool || this.#inFlight || this.#leaseLost) return;
    while (!this.#buffer.isEmpty) spool.write(this.#takeBatch());
  }

  setProgress(progress: number | undefined, status: string | undefined): void {
    if (progress !== undefined && Number.isFinite(progress)) {
      const p = Math.min(100, Math.max(0, progress));
      if (p !== this.#progress) {
        this.#progress = p;
        this.#progressDirty = true;
      }
    }
    if (status !== undefined) {
      const s = status.slice(0, MAX_STATUS_CHARS);
      if (s !== this.#status) {
        this.#status = s;
        this.#progressDirty = true;
      }
    }
  }

  /** Sends what is buffered (one request at a time; concurrent calls share it). */
  flush(): Promise<void> {
    this.#inFlight ??= this.#drain().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  /**
   * Stops the timer and sends everything left, retrying while the manager is unreachable,
   * for at most `timeoutMs`; output still unsent then is given up (and logged by the caller).
   * With a spool: one attempt, then whatever is left goes to disk (`spooled`), for the
   * agent to deliver before the task's report.
   */
  async close(
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<{ unsentBytes: number; spooled: boolean }> {
    this.#stopTimer();
    const spool = this.#options.spool;
    if (spool) {
      // A request in flight finishes first (on failure its chunks go to disk, in order).
      if (Date.now() >= this.#retryAt) await this.flush();
      else await this.#inFlight;
      this.#spill();
      this.#closed = true;
      return { unsentBytes: 0, spooled: !this.#leaseLost && spool.pending() };
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.flush();
      if (this.#leaseLost || !this.#hasUnsentInMemory()) break;
      const now = Date.now();
      if (now >= deadline || signal?.aborted) break;
      await sleep(Math.max(1, Math.min(this.#retryAt, deadline) - now), signal);
    }
    this.#closed = true;
    const retryBytes = (this.#retry?.chunks ?? []).reduce(
      (n, c) => n + Buffer.byteLength(c.text),
      0,
    );
    return { unsentBytes: this.#leaseLost ? 0 : this.#buffer.size + retryBytes, spooled: false };
  }

  #hasUnsentInMemory(): boolean {
    return !this.#buffer.isEmpty || this.#progressDirty || this.#retry !== undefined;
  }

  /** Stops at once, discarding what is buffered (the task was revoked). */
  discard(): void {
    this.#stopTimer();
    this.#closed = true;
    this.#buffer.take(Number.MAX_SAFE_INTEGER);
    this.#retry = undefined;
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #drain(): Promise<void> {
    const spool = this.#options.spool;
    while (!this.#leaseLost) {
      // Disk first: it holds the older output.
      const fromSpool = spool?.pending() ? spool.peek() : undefined;
      if (!fromSpool && !this.#hasUnsentInMemory()) break;
      const batch = fromSpool ?? this.#retry ?? this.#takeBatch();
      this.#retry = undefined;
      const body: LogAppendInput = { lease: this.#options.lease, chunks: batch.chunks };
      if (batch.batch !== undefined) body.batch = batch.batch;
      if (this.#progress !== undefined) body.progress = this.#progress;
      if (this.#status !== undefined) body.status = this.#status;
      const progressWasDirty = this.#progressDirty;
      this.#progressDirty = false;
      try {
        await this.#options.send(body);
        if (fromSpool) spool!.shift();
        this.#failures = 0;
        this.#retryAt = 0;
      } catch (error) {
        if (error instanceof DroverError && error.code === 'lease_lost') {
          this.#leaseLost = true;
          this.#buffer.take(Number.MAX_SAFE_INTEGER);
          this.#retry = undefined;
          this.#stopTimer();
          this.#options.onLeaseLost();
          return;
        }
        this.#options.onError?.(error);
        const retryable =
          !(error instanceof DroverError) || isTemporary(error.code) || error.code === 'not_found';
        if (retryable) {
          if (spool) {
            if (!fromSpool && batch.chunks.length > 0) spool.write(batch);
            while (!this.#buffer.isEmpty) spool.write(this.#takeBatch());
          } else if (batch.chunks.length > 0) {
            this.#retry = batch;
          }
          this.#progressDirty ||= progressWasDirty;
          this.#retryAt =
            Date.now() +
            backoffDelay(this.#failures++, {
              baseMs: this.#options.retryBaseMs ?? 250,
              maxMs: this.#options.retryMaxMs ?? 5_000,
            });
        } else if (fromSpool) {
          // Refused as it is (invalid_input, too_large): sending it again cannot succeed.
          spool!.shift();
        }
        // (Chunks from memory refused as they are are simply not kept.)
        return;
      }
    }
  }
}
