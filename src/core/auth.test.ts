import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { workerMatches } from './auth.js';

describe('workerMatches', () => {
  it('matches names against worker patterns', () => {
    expect(workerMatches('*', 'anything')).toBe(true);
    expect(workerMatches('render-07', 'render-07')).toBe(true);
    expect(workerMatches('render-07', 'render-070')).toBe(false);
    expect(workerMatches('render-*', 'render-07')).toBe(true);
    expect(workerMatches('render-*', 'render-')).toBe(true);
    expect(workerMatches('render-*', 'xrender-07')).toBe(false);
    expect(workerMatches('*-gpu', 'render-07-gpu')).toBe(true);
    expect(workerMatches('r*-*-gpu', 'render-07-gpu')).toBe(true);
    expect(workerMatches('r*-*-gpu', 'render07-gpu')).toBe(false);
    expect(workerMatches('ab*ba', 'aba')).toBe(false);
    // Regular-expression characters in a pattern are plain characters.
    expect(workerMatches('node.1', 'nodex1')).toBe(false);
    expect(workerMatches('n(+)*', 'n(+)7')).toBe(true);
  });

  it('agrees with a regular expression built from the pattern', () => {
    const char = fc.constantFrom('a', 'b', '-', '.', '*');
    fc.assert(
      fc.property(
        fc.string({ unit: char, maxLength: 8 }),
        fc.string({ unit: char, maxLength: 10 }),
        (pattern, rawName) => {
          const name = rawName.replaceAll('*', 'x');
          const escaped = pattern.split('*').map((p) => p.replace(/[.-]/g, '\\$&'));
          const re = new RegExp(`^${escaped.join('.*')}$`, 's');
          expect(workerMatches(pattern, name)).toBe(re.test(name));
        },
      ),
    );
  });
});
