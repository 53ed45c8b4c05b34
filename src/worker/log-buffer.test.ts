import { describe, expect, it } from 'vitest';
import { MAX_LOG_CHUNK_BYTES, MAX_LOG_CHUNKS_PER_REQUEST } from '../core/worker-protocol.js';
import { LogBuffer, splitUtf8 } from './log-buffer.js';

const bytes = (s: string) => Buffer.byteLength(s);

describe('LogBuffer', () => {
  it('merges lines of one stream into chunks no larger than the limit', () => {
    const buf = new LogBuffer({ maxChunkBytes: 10 });
    buf.append('stdout', 'abcd\n');
    buf.append('stdout', 'efgh\n');
    buf.append('stdout', 'ij\n');
    buf.append('stderr', 'oops\n');
    expect(buf.take()).toEqual([
      { stream: 'stdout', text: 'abcd\nefgh\n' },
      { stream: 'stdout', text: 'ij\n' },
      { stream: 'stderr', text: 'oops\n' },
    ]);
    expect(buf.isEmpty).toBe(true);
    expect(buf.size).toBe(0);
  });

  it('splits a long line at the chunk limit without cutting a character', () => {
    const buf = new LogBuffer({ maxChunkBytes: 7 });
    const text = 'ééééé€€x'; // 2-byte and 3-byte characters
    buf.append('stdout', text);
    const chunks = buf.take();
    for (const c of chunks) expect(bytes(c.text)).toBeLessThanOrEqual(7);
    expect(chunks.map((c) => c.text).join('')).toBe(text);
  });

  it('keeps real chunks within the protocol limits', () => {
    const buf = new LogBuffer();
    buf.append('stdout', 'x'.repeat(MAX_LOG_CHUNK_BYTES * 20 + 5));
    const first = buf.take();
    expect(first).toHaveLength(MAX_LOG_CHUNKS_PER_REQUEST);
    for (const c of first) expect(bytes(c.text)).toBeLessThanOrEqual(MAX_LOG_CHUNK_BYTES);
    expect(buf.take(100)).toHaveLength(5);
  });

  it('drops the oldest output past the bound and leaves one marker in front', () => {
    const buf = new LogBuffer({ maxChunkBytes: 10, maxBytes: 30 });
    for (let i = 0; i < 10; i++) buf.append('stdout', `line ${i}...\n`); // 10 bytes each
    expect(buf.size).toBeLessThanOrEqual(30);
    const chunks = buf.take(100);
    expect(chunks[0]).toEqual({ stream: 'system', text: '[… 70 bytes dropped …]\n' });
    expect(chunks.slice(1).map((c) => c.text)).toEqual([
      'line 7...\n',
      'line 8...\n',
      'line 9...\n',
    ]);
    expect(buf.droppedBytes).toBe(70);
  });
});

describe('splitUtf8', () => {
  it('returns short text whole', () => {
    expect(splitUtf8('hello', 100)).toEqual(['hello']);
  });
});
