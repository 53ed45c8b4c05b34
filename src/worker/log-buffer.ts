import { MAX_LOG_CHUNK_BYTES, MAX_LOG_CHUNKS_PER_REQUEST } from '../core/worker-protocol.js';

/**
 * A task's output waiting to be sent to the manager, cut into chunks the log route accepts.
 * Memory is bounded: while the manager is unreachable a chatty renderer could otherwise
 * grow the worker without limit, so past `maxBytes` the oldest output is dropped and one
 * `[… N bytes dropped …]` marker says so where it was.
 */

export type LogStream = 'stdout' | 'stderr' | 'system';

export interface LogChunk {
  stream: LogStream;
  text: string;
}

/**
 * Chunks sent in one request, numbered per lease (1, 2, …) in the order they are sent: the
 * manager takes each number once, so a batch sent again (a retry after a lost reply, or a
 * spooled batch whose removal a crash prevented) is not logged twice.
 */
export interface LogBatch {
  /** Absent for batches spooled by a worker from before batches were numbered. */
  batch?: number;
  chunks: LogChunk[];
}

export interface LogBufferOptions {
  /** Largest chunk text in UTF-8 bytes (default MAX_LOG_CHUNK_BYTES). */
  maxChunkBytes?: number;
  /** Most output held in memory (default 8 MiB). */
  maxBytes?: number;
}

export const DEFAULT_LOG_BUFFER_BYTES = 8 * 1024 * 1024;

interface Entry {
  stream: LogStream;
  text: string;
  bytes: number;
  /** Set on the marker entry: bytes dropped at this point. */
  dropped?: number;
}

export class LogBuffer {
  readonly #maxChunkBytes: number;
  readonly #maxBytes: number;
  #entries: Entry[] = [];
  #bytes = 0;
  #droppedTotal = 0;

  constructor(options: LogBufferOptions = {}) {
    this.#maxChunkBytes = Math.max(4, options.maxChunkBytes ?? MAX_LOG_CHUNK_BYTES);
    this.#maxBytes = Math.max(this.#maxChunkBytes, options.maxBytes ?? DEFAULT_LOG_BUFFER_BYTES);
  }

  /** Bytes of output held (markers excluded). */
  get size(): number {
    return this.#bytes;
  }

  get isEmpty(): boolean {
    return this.#entries.length === 0;
  }

  /** Bytes dropped since the buffer was created. */
  get droppedBytes(): number {
    return this.#droppedTotal;
  }

  append(stream: LogStream, text: string): void {
    if (text.length === 0) return;
    for (const piece of splitUtf8(text, this.#maxChunkBytes)) {
      const bytes = Buffer.byteLength(piece);
      const last = this.#entries.at(-1);
      if (
        last &&
        last.dropped === undefined &&
        last.stream === stream &&
        last.bytes + bytes <= this.#maxChunkBytes
      ) {
        last.text += piece;
        last.bytes += bytes;
      } else {
        this.#entries.push({ stream, text: piece, bytes });
      }
      this.#bytes += bytes;
    }
    this.#enforceBound();
  }

  /** Removes and returns the oldest chunks, at most `maxChunks` (one log request's worth). */
  take(maxChunks = MAX_LOG_CHUNKS_PER_REQUEST): LogChunk[] {
    const taken = this.#entries.splice(0, Math.max(0, maxChunks));
    const chunks: LogChunk[] = [];
    for (const entry of taken) {
      if (entry.dropped !== undefined) {
        chunks.push({ stream: 'system', text: dropMarker(entry.dropped) });
      } else {
        this.#bytes -= entry.bytes;
        chunks.push({ stream: entry.stream, text: entry.text });
      }
    }
    return chunks;
  }

  /** Drops the oldest entries until the buffer fits, leaving one marker in front. */
  #enforceBound(): void {
    if (this.#bytes <= this.#maxBytes) return;
    let dropped = 0;
    while (this.#bytes > this.#maxBytes) {
      const first = this.#entries.shift();
      if (!first) break;
      if (first.dropped !== undefined) {
        dropped += first.dropped;
        continue;
      }
      this.#bytes -= first.bytes;
      dropped += first.bytes;
      this.#droppedTotal += first.bytes;
    }
    const front = this.#entries[0];
    if (front?.dropped !== undefined) {
      front.dropped += dropped;
    } else {
      this.#entries.unshift({ stream: 'system', text: '', bytes: 0, dropped });
    }
  }
}

export function dropMarker(bytes: number): string {
  return `[… ${bytes} bytes dropped …]\n`;
}

/** Splits text into pieces of at most `maxBytes` UTF-8 bytes, never inside a character. */
export function splitUtf8(text: string, maxBytes: number): string[] {
  // Fast path: a UTF-16 unit is at most 3 bytes.
  if (text.length * 3 <= maxBytes) return [text];
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return [text];
  const pieces: string[] = [];
  let start = 0;
  while (start < buf.length) {
    let end = Math.min(start + maxBytes, buf.length);
    // Back off continuation bytes (10xxxxxx) so a character is never cut in two.
    while (end < buf.length && end > start && ((buf[end] ?? 0) & 0xc0) === 0x80) end--;
    pieces.push(buf.toString('utf8', start, end));
    start = end;
  }
  return pieces;
}
