import { describe, expect, it } from 'vitest';
import { isConnectionError, retryDelayMs } from './transient.js';

const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('which failed transactions run again', () => {
  it('runs deadlocks and serialization failures again a few times, on PostgreSQL only', () => {
    expect(retryDelayMs(pgError('40P01'), 'postgres', 1, false)).toBeGreaterThan(0);
    expect(retryDelayMs(pgError('40001'), 'postgres', 3, true)).toBeGreaterThan(0);
    expect(retryDelayMs(pgError('40P01'), 'postgres', 6, false)).toBeUndefined();
    expect(retryDelayMs(pgError('40P01'), 'sqlite', 1, false)).toBeUndefined();
  });

  it('runs a transaction that lost its connection again once, only before COMMIT was sent', () => {
    const lost = pgError('57P01', 'terminating connection due to administrator command');
    expect(retryDelayMs(lost, 'postgres', 1, false)).toBeGreaterThan(0);
    expect(retryDelayMs(lost, 'postgres', 2, false)).toBeUndefined();
    expect(retryDelayMs(lost, 'postgres', 1, true)).toBeUndefined();
    expect(
      retryDelayMs(new Error('Connection terminated unexpectedly'), 'postgres', 1, false),
    ).toBe(250);
  });

  it('never runs again what the statement itself got wrong', () => {
    expect(retryDelayMs(pgError('23505'), 'postgres', 1, false)).toBeUndefined();
    expect(isConnectionError(pgError('42P01'))).toBe(false);
    expect(isConnectionError(pgError('ECONNREFUSED'))).toBe(true);
    expect(isConnectionError(pgError('08006'))).toBe(true);
  });
});
