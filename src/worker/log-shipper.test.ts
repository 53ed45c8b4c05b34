import { describe, expect, it } from 'vitest';
import { DroverError } from '../core/errors.js';
import type { LogAppendInput } from '../core/worker-protocol.js';
import { LogShipper } from './log-shipper.js';

describe('LogShipper', () => {
  it('sends a batch whose reply was lost again under the same number, before newer output', async () => {
    const received: LogAppendInput[] = [];
    let loseReplies = 1;
    const shipper = new LogShipper({
      lease: 'L1',
      // The manager takes the request, but the reply never arrives (a timeout, a reset).
      send: (body) => {
        received.push(structuredClone(body));
        if (loseReplies-- > 0) return Promise.reject(new DroverError('unavailable', 'no reply'));
        return Promise.resolve();
      },
      onLeaseLost: () => undefined,
      retryBaseMs: 1,
      retryMaxMs: 1,
    });
    shipper.append('stdout', 'first\n');
    await shipper.flush();
    shipper.append('stdout', 'second\n');
    const { unsentBytes } = await shipper.close(2_000);
    expect(unsentBytes).toBe(0);
    expect(received.map((b) => [b.batch, b.chunks.map((c) => c.text).join('')])).toEqual([
      [1, 'first\n'],
      [1, 'first\n'],
      [2, 'second\n'],
    ]);
  });
});
