import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DroverError } from './errors.js';
import {
  MAX_FRAMES_PER_JOB,
  MAX_FRAME_MAGNITUDE,
  chunkFrames,
  formatFrameList,
  parseFrameList,
} from './frames.js';

function range(start: number, end: number, step = 1): number[] {
  const out: number[] = [];
  const dir = end >= start ? 1 : -1;
  for (let f = start; dir > 0 ? f <= end : f >= end; f += dir * step) out.push(f);
  return out;
}

function parseError(spec: string): DroverError {
  try {
    parseFrameList(spec);
  } catch (err) {
    if (err instanceof DroverError) return err;
    throw err;
  }
  throw new Error(`"${spec}" parsed without an error`);
}

describe('parseFrameList', () => {
  it.each<[string, number[]]>([
    ['1-100', range(1, 100)],
    ['1-100x5', range(1, 100, 5)],
    ['1-100:5', range(1, 100, 5)],
    ['1,3,7', [1, 3, 7]],
    ['42', [42]],
    ['0', [0]],
    ['10-1', range(10, 1)],
    ['10-1x3', [10, 7, 4, 1]],
    ['-5--1', [-5, -4, -3, -2, -1]],
    ['-10-10', range(-10, 10)],
    ['-3', [-3]],
    ['1-3,10,20-22', [1, 2, 3, 10, 20, 21, 22]],
    ['1-5 8 10-12x2', [1, 2, 3, 4, 5, 8, 10, 12]],
    ['  1 , 2,,3  ', [1, 2, 3]],
    ['5,1-3', [5, 1, 2, 3]],
    // Deadline's other spellings (issue 10).
    ['500-600step4', range(500, 600, 4)],
    ['1-100by5', range(1, 100, 5)],
    ['1-100every5', range(1, 100, 5)],
    ['1-100X5', range(1, 100, 5)],
    ['1-100Step5', range(1, 100, 5)],
    ['1:100', range(1, 100)],
    ['1:100:5', range(1, 100, 5)],
    ['100:1:10', range(100, 1, 10)],
    ['-10:-1', range(-10, -1)],
    ['-1:-10', range(-1, -10)],
    ['1 3 5', [1, 3, 5]],
    ['1, 3, 5', [1, 3, 5]],
    ['1-3 , 7:9\t20', [1, 2, 3, 7, 8, 9, 20]],
  ])('parses %j', (spec, frames) => {
    expect(parseFrameList(spec)).toEqual(frames);
  });

  it('keeps the first occurrence of a repeated frame', () => {
    expect(parseFrameList('3,1-5,2,5')).toEqual([3, 1, 2, 4, 5]);
  });

  it('renders duplicates and overlaps once', () => {
    expect(parseFrameList('1-10,5-15')).toEqual(range(1, 15));
    expect(parseFrameList('1-10,1-10x2,1:10')).toEqual(range(1, 10));
    expect(parseFrameList('10-1,1-10')).toEqual(range(10, 1));
    expect(parseFrameList('1-20x2,1-20x3')).toEqual([...range(1, 19, 2), ...[4, 10, 16]]);
  });

  it('counts the frame budget after removing duplicates', () => {
    expect(parseFrameList(`1-${MAX_FRAMES_PER_JOB},1-${MAX_FRAMES_PER_JOB}`)).toHaveLength(
      MAX_FRAMES_PER_JOB,
    );
    expect(parseFrameList('1-10,1-10,5', 'frames', 10)).toHaveLength(10);
    expect(() => parseFrameList('1-10,1-10,11', 'frames', 10)).toThrow(/more than 10 frames/);
  });

  it('skips a repeated huge range without visiting its frames again', () => {
    // 1,000 copies of a 1,000,000-frame range: expanding each would visit 10^9 frames.
    const spec = Array.from({ length: 900 }, () => `1-${MAX_FRAMES_PER_JOB}`).join(',');
    const started = performance.now();
    expect(parseFrameList(spec)).toHaveLength(MAX_FRAMES_PER_JOB);
    // Not a performance claim: a generous guard that the copies were skipped, not expanded
    // (visiting 9×10^8 frames takes minutes).
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('refuses a list built to make the parser revisit frames on unrelated grids', () => {
    // Steps 12 down to 2, every residue, over one window of 1,000,000 frames: no range lies
    // on a grid of an earlier one, so each frame is visited about 11 times; the distinct
    // frames stay within the budget.
    const tokens: string[] = [];
    for (let step = 12; step >= 2; step--) {
      for (let r = 0; r < step; r++) tokens.push(`${r}-999999x${step}`);
    }
    const started = performance.now();
    expect(parseError(tokens.join(',')).message).toMatch(/repeats too many frames/);
    // A generous guard that the work stopped at the visit budget.
    expect(performance.now() - started).toBeLessThan(10_000);
    // The same grids written once each parse.
    expect(parseFrameList('0-999999x2,1-999999x2,0-999999x3')).toHaveLength(1_000_000);
  });

  it.each([
    'abc',
    '1-',
    '1--',
    '1-10x',
    '1x5',
    '1.5',
    '1-2-3',
    '1 - 5',
    '#',
    '1:',
    '1::5',
    '1-10step',
    '1-10by-2',
    '1-10 x5',
    '1:2:3:4',
    '1-10every5x2',
  ])('refuses garbage %j and names the token', (spec) => {
    const err = parseError(spec);
    expect(err.code).toBe('invalid_input');
    expect(err.message).toMatch(/is not a frame/);
    expect(err.message).toContain(`"`);
  });

  it('names the given field in errors', () => {
    expect(() => parseFrameList('x', 'tasks.0.frames')).toThrow(/^tasks\.0\.frames: /);
  });

  it('refuses step 0', () => {
    expect(parseError('1-10x0').message).toMatch(/step .* must be between 1/);
  });

  it('refuses frames beyond the magnitude bound', () => {
    expect(parseError(`${MAX_FRAME_MAGNITUDE + 1}`).message).toMatch(/outside/);
    expect(parseError(`1-${MAX_FRAME_MAGNITUDE + 1}`).message).toMatch(/outside/);
    expect(parseFrameList(`${MAX_FRAME_MAGNITUDE}`)).toEqual([MAX_FRAME_MAGNITUDE]);
  });

  it('accepts exactly the frame limit and refuses one more', () => {
    expect(parseFrameList(`1-${MAX_FRAMES_PER_JOB}`)).toHaveLength(MAX_FRAMES_PER_JOB);
    expect(parseError(`0-${MAX_FRAMES_PER_JOB}`).message).toMatch(/more than 1000000 frames/);
    expect(parseError(`1-${MAX_FRAMES_PER_JOB},0`).message).toMatch(/more than/);
  });

  it('refuses a huge range by counting, without expanding it', () => {
    const started = performance.now();
    expect(parseError('1-999999999').message).toMatch(/more than/);
    // Not a performance claim: a generous guard that the range was counted, not expanded
    // (expanding a billion frames takes many seconds and gigabytes).
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('honours a smaller maxFrames', () => {
    expect(() => parseFrameList('1-11', 'frames', 10)).toThrow(/more than 10 frames/);
    expect(parseFrameList('1-10', 'frames', 10)).toHaveLength(10);
  });

  it('refuses a spec longer than the length bound before parsing', () => {
    expect(parseError('1,'.repeat(6000)).message).toMatch(/longer than/);
  });
});

describe('chunkFrames', () => {
  it('splits in order with a short last chunk', () => {
    expect(chunkFrames([1, 2, 3, 4, 5, 6, 7], 3)).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
  });

  it('gives one chunk when the chunk size covers every frame', () => {
    expect(chunkFrames([5, 1, 9], 10)).toEqual([[5, 1, 9]]);
  });

  it('gives no chunks for no frames', () => {
    expect(chunkFrames([], 4)).toEqual([]);
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses chunk size %s', (size) => {
    expect(() => chunkFrames([1, 2], size)).toThrow(DroverError);
  });
});

describe('formatFrameList', () => {
  it.each<[number[], string]>([
    [[], ''],
    [[7], '7'],
    [[1, 2], '1,2'],
    [range(1, 100), '1-100'],
    [range(1, 100, 5), '1-96x5'],
    [range(10, 1), '10-1'],
    [[-5, -4, -3], '-5--3'],
    [[3, 2, 1, 10, 20, 30, 31], '3-1,10-30x10,31'],
  ])('formats %j as %j', (frames, text) => {
    expect(formatFrameList(frames)).toBe(text);
  });
});

describe('properties', () => {
  const frame = fc.integer({ min: -MAX_FRAME_MAGNITUDE, max: MAX_FRAME_MAGNITUDE });
  // Up to 500 scattered frames format to well under the 10,000-character spec bound.
  const distinctFrames = fc.uniqueArray(frame, { minLength: 1, maxLength: 500 });
  // Small values make runs (and so ranges) likely, which the wide arbitrary rarely does.
  const clusteredFrames = fc.uniqueArray(fc.integer({ min: -30, max: 30 }), {
    minLength: 1,
    maxLength: 61,
  });

  it('parseFrameList(formatFrameList(xs)) gives xs back for distinct frames', () => {
    for (const arb of [distinctFrames, clusteredFrames]) {
      fc.assert(
        fc.property(arb, (xs) => {
          expect(parseFrameList(formatFrameList(xs))).toEqual(xs);
        }),
      );
    }
  });

  it('chunks concatenate back to the input and respect the chunk size', () => {
    fc.assert(
      fc.property(fc.array(fc.integer()), fc.integer({ min: 1, max: 50 }), (xs, size) => {
        const chunks = chunkFrames(xs, size);
        expect(chunks.flat()).toEqual(xs);
        expect(chunks).toHaveLength(Math.ceil(xs.length / size));
        for (const chunk of chunks.slice(0, -1)) expect(chunk).toHaveLength(size);
        for (const chunk of chunks) expect(chunk.length).toBeGreaterThan(0);
      }),
    );
  });

  /** A token in any of Deadline's spellings, with the frames it stands for (written order). */
  const spelledToken = (magnitude: number) =>
    fc
      .record({
        a: fc.integer({ min: -magnitude, max: magnitude }),
        b: fc.integer({ min: -magnitude, max: magnitude }),
        step: fc.integer({ min: 1, max: 40 }),
        kind: fc.constantFrom('frame', 'range', 'stepped'),
        rangeSep: fc.constantFrom('-', ':'),
        stepSep: fc.constantFrom('x', 'X', 'step', 'by', 'every', ':', 'Every'),
      })
      .map(({ a, b, step, kind, rangeSep, stepSep }) => {
        if (kind === 'frame') return { text: String(a), frames: [a] };
        const sep = kind === 'stepped' && rangeSep === '-' ? stepSep : ':';
        const spelled =
          kind === 'range' ? `${a}${rangeSep}${b}` : `${a}${rangeSep}${b}${sep}${step}`;
        return { text: spelled, frames: range(a, b, kind === 'range' ? 1 : step) };
      });
  const separator = fc.constantFrom(',', ' ', ', ', ' , ', '\t', ',,', '  ');
  /** Several tokens joined by commas and/or spaces, with the frames the list stands for. */
  const spelledList = (magnitude: number) =>
    fc
      .array(fc.tuple(spelledToken(magnitude), separator), { minLength: 1, maxLength: 12 })
      .map((parts) => ({
        text: parts.map(([t, sep], i) => (i === 0 ? t.text : sep + t.text)).join(''),
        // The model: expand every token in order, keep each frame's first occurrence.
        frames: [...new Set(parts.flatMap(([t]) => t.frames))],
      }));

  it('parses every spelling to the frames written, each once, in first-written order', () => {
    // Small lists, and lists long enough to be tracked in a bit set.
    for (const magnitude of [300, 20_000]) {
      fc.assert(
        fc.property(spelledList(magnitude), ({ text, frames }) => {
          expect(parseFrameList(text)).toEqual(frames);
        }),
        { numRuns: magnitude > 1000 ? 50 : 100 },
      );
    }
  });

  it('refuses a list exactly when its distinct frames exceed the budget', () => {
    fc.assert(
      fc.property(spelledList(300), fc.integer({ min: 1, max: 1500 }), ({ text, frames }, max) => {
        if (frames.length <= max) {
          expect(parseFrameList(text, 'frames', max)).toEqual(frames);
        } else {
          expect(() => parseFrameList(text, 'frames', max)).toThrow(/more than/);
        }
      }),
    );
  });

  it('never returns more frames than maxFrames, and the frames are distinct', () => {
    const token = fc
      .tuple(
        fc.integer({ min: -1000, max: 1000 }),
        fc.integer({ min: -1000, max: 1000 }),
        fc.integer({ min: 1, max: 20 }),
      )
      .map(([a, b, step]) => `${a}-${b}x${step}`);
    fc.assert(
      fc.property(
        fc.array(fc.oneof(token, fc.integer({ min: -1000, max: 1000 }).map(String)), {
          minLength: 1,
          maxLength: 10,
        }),
        fc.integer({ min: 1, max: 3000 }),
        (tokens, maxFrames) => {
          let frames: number[];
          try {
            frames = parseFrameList(tokens.join(','), 'frames', maxFrames);
          } catch (err) {
            expect(err).toBeInstanceOf(DroverError);
            expect((err as DroverError).message).toMatch(/more than/);
            return;
          }
          expect(frames.length).toBeLessThanOrEqual(maxFrames);
          expect(new Set(frames).size).toBe(frames.length);
        },
      ),
    );
  });
});
