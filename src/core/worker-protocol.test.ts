import { describe, expect, it } from 'vitest';
import { parseInput } from './validate.js';
import {
  heartbeatSchema,
  logAppendSchema,
  taskReportSchema,
  workerRegistrationSchema,
} from './worker-protocol.js';

const capabilities = { cpus: 4, memoryMb: 8192, os: 'linux' };

describe('worker protocol text', () => {
  it.each<[Record<string, unknown>, string]>([
    [{ name: 'w\u00001', capabilities }, 'name'],
    [{ name: 'w1', region: 'eu\u0000', capabilities }, 'region'],
    [{ name: 'w1', pools: ['a', '\ud800'], capabilities }, 'pools.1'],
    [{ name: 'w1', capabilities: { ...capabilities, os: 'li\u0000nux' } }, 'capabilities.os'],
  ])('registration refuses NUL and lone surrogates: %j', (body, field) => {
    expect(() => parseInput(workerRegistrationSchema, body)).toThrow(
      expect.objectContaining({ field }),
    );
  });

  it('refuses NUL in a lease', () => {
    expect(() => parseInput(taskReportSchema, { lease: 'l\u0000', outcome: 'completed' })).toThrow(
      expect.objectContaining({ field: 'lease' }),
    );
  });

  it("shows NUL in a process's output as U+FFFD instead of refusing the report", () => {
    // A process may print binary output; refusing the chunk would lose the whole log batch.
    const log = parseInput(logAppendSchema, {
      lease: 'l1',
      chunks: [{ stream: 'stdout', text: 'a\u0000b\ud800' }],
      status: 's\u0000',
    });
    expect(log.chunks[0]!.text).toBe('a\ufffdb\ufffd');
    expect(log.status).toBe('s\ufffd');
    const report = parseInput(taskReportSchema, {
      lease: 'l1',
      outcome: 'failed',
      message: 'exit\u0000',
    });
    expect(report.message).toBe('exit\ufffd');
    const beat = parseInput(heartbeatSchema, { tasks: [{ lease: 'l1', status: '\u0000' }] });
    expect(beat.tasks[0]!.status).toBe('\ufffd');
  });
});
