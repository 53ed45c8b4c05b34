import { describe, expect, it } from 'vitest';
import { parseDuration } from './manager.js';

describe('drover manager --purge-deleted-after', () => {
  it('takes a whole number and a unit', () => {
    expect(parseDuration('7d', '--purge-deleted-after')).toBe(7 * 86_400_000);
    expect(parseDuration('12h', '--purge-deleted-after')).toBe(12 * 3_600_000);
    expect(parseDuration('30m', '--purge-deleted-after')).toBe(30 * 60_000);
    expect(parseDuration('0s', '--purge-deleted-after')).toBe(0);
  });

  it('refuses anything else, naming the flag', () => {
    for (const bad of ['7', '1.5d', '-1d', '7 days', '', 'd']) {
      expect(() => parseDuration(bad, '--purge-deleted-after')).toThrow(
        /^--purge-deleted-after: .* is not a duration/,
      );
    }
  });
});
