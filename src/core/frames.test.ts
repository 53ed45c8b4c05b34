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
  ])('parses %j', (spec, frames) => {
    expect(parseFrameList(spec)).toEqual(frames);
  });

  it('keeps the first occurrence of a repeated frame', () => {
    expect(parseFrameList('3,1-5,2,5')).toEqual([3, 1, 2, 4, 5]);
  });

  it('never returns a negative zero', () => {
    expect(Object.is(parseFrameList('-0')[0], 0)).toBe(true);
  });

  it.each(['', '   ', ',,,'])('refuses an empty list %j', (spec) => {
    const err = parseError(spec);
    expect(err.code).toBe('invalid_input');
    expect(err.field).toBe('frames');
    expect(err.message).toMatch(/empty/);
  });

  it.each(['abc', '1-', '1--', '1-10x', '1x5', '1.5', '1-2-3', '1 - 5', '#'])(
    'refuses garbage %j and names the token',
    (spec) => {
      const err = parseError(spec);
      expect(err.code).toBe('invalid_input');
      expect(err.message).toMatch(/is not a frame/);
    },
  );

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
