import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DroverError } from './errors.js';
import {
  checkSequence,
  detectSequences,
  formatSequencePattern,
  frameFileName,
  parseSequencePattern,
  sequenceHoles,
  type ListedFile,
} from './sequences.js';

function files(names: string[], size = 100): ListedFile[] {
  return names.map((name) => ({ name, size }));
}

function range(first: number, last: number): number[] {
  const out: number[] = [];
  for (let f = first; f <= last; f++) out.push(f);
  return out;
}

function patternError(text: string): DroverError {
  try {
    parseSequencePattern(text, 'review.pattern');
  } catch (err) {
    if (err instanceof DroverError) return err;
    throw err;
  }
  throw new Error(`"${text}" parsed without an error`);
}

describe('detectSequences', () => {
  it('groups frames into one sequence with its padding, range and bytes', () => {
    const names = range(1001, 1100).map((f) => `beauty.${f}.exr`);
    // Listed in a shuffled order, as readdir may return them.
    const shuffled = [...names.slice(50), ...names.slice(0, 50)].reverse();
    const { sequences, singles } = detectSequences(files(shuffled, 2048));
    expect(singles).toEqual([]);
    expect(sequences).toHaveLength(1);
    const seq = sequences[0]!;
    expect(seq).toMatchObject({
      head: 'beauty.',
      tail: '.exr',
      padding: 4,
      first: 1001,
      last: 1100,
    });
    expect(seq.frames).toEqual(range(1001, 1100));
    expect(seq.files.map((f) => f.name)).toEqual(names);
    expect(seq.bytes).toBe(100 * 2048);
    expect(formatSequencePattern(seq, 'range')).toBe('beauty.1001-1100#.exr');
    expect(formatSequencePattern(seq, 'printf')).toBe('beauty.%04d.exr');
    expect(formatSequencePattern(seq, 'hash')).toBe('beauty.####.exr');
  });

  it('reads zero-padded frames at their width', () => {
    const { sequences } = detectSequences(files(['a.0001.png', 'a.0002.png', 'a.0010.png']));
    expect(sequences).toHaveLength(1);
    expect(sequences[0]).toMatchObject({ padding: 4, frames: [1, 2, 10] });
    expect(sequenceHoles(sequences[0]!)).toEqual([{ first: 3, last: 9 }]);
    expect(formatSequencePattern(sequences[0]!, 'range')).toBe('a.1,2,10#.png');
  });

  it('keeps separate sequences per head, tail and AOV', () => {
    const names = [
      ...range(1, 3).map((f) => `beauty.${String(f).padStart(4, '0')}.exr`),
      ...range(1, 3).map((f) => `beauty.${String(f).padStart(4, '0')}.png`),
      ...range(1, 3).map((f) => `beauty_AOV2.${String(f).padStart(4, '0')}.exr`),
      ...range(1, 2).map((f) => `sub/dir7/beauty.${String(f).padStart(4, '0')}.exr`),
    ];
    const { sequences, singles } = detectSequences(files(names));
    expect(singles).toEqual([]);
    expect(sequences.map((s) => formatSequencePattern(s, 'range'))).toEqual([
      'beauty.1-3#.exr',
      'beauty.1-3#.png',
      'beauty_AOV2.1-3#.exr',
      'sub/dir7/beauty.1,2#.exr',
    ]);
  });

  it('reports gaps as holes and in the compact range', () => {
    const frames = [1001, 1002, 1003, 1010, 1011, 1020];
    const { sequences } = detectSequences(files(frames.map((f) => `r_${f}.exr`)));
    const seq = sequences[0]!;
    expect(seq.head).toBe('r_');
    expect(sequenceHoles(seq)).toEqual([
      { first: 1004, last: 1009 },
      { first: 1012, last: 1019 },
    ]);
    expect(formatSequencePattern(seq, 'range')).toBe('r_1001-1003,1010,1011,1020#.exr');
  });

  it('reads an unpadded run from 1001 as %04d (not %d) and 998…1000 as %03d', () => {
    const a = detectSequences(files(range(1001, 1003).map((f) => `x.${f}.exr`))).sequences;
    expect(a.map((s) => s.padding)).toEqual([4]);
    const b = detectSequences(files(range(998, 1001).map((f) => `x.${f}.exr`))).sequences;
    expect(b).toHaveLength(1);
    expect(b[0]).toMatchObject({ padding: 3, frames: [998, 999, 1000, 1001] });
    expect(b[0]!.files.map((f) => f.name)).toEqual(
      range(998, 1001).map((f) => frameFileName(b[0]!, f)),
    );
    const c = detectSequences(files(range(1, 12).map((f) => `x.${f}.exr`))).sequences;
    expect(c.map((s) => [s.padding, s.frames.length])).toEqual([[1, 12]]);
    expect(formatSequencePattern(c[0]!, 'printf')).toBe('x.%d.exr');
  });

  it('joins 1000 to the padding-4 sequence that 0998 and 0999 started', () => {
    const { sequences } = detectSequences(
      files(['x.0998.exr', 'x.0999.exr', 'x.1000.exr', 'x.1001.exr']),
    );
    expect(sequences).toHaveLength(1);
    expect(sequences[0]).toMatchObject({ padding: 4, frames: [998, 999, 1000, 1001] });
  });

  it('splits a padding change (renderer wrote 3 digits, then 4) into two sequences', () => {
    const names = ['x.098.exr', 'x.099.exr', 'x.0098.exr', 'x.0099.exr', 'x.0100.exr', 'x.100.exr'];
    const { sequences, singles } = detectSequences(files(names));
    expect(singles).toEqual([]);
    expect(sequences.map((s) => [s.padding, s.frames])).toEqual([
      [3, [98, 99, 100]],
      [4, [98, 99, 100]],
    ]);
    // Every file is in exactly one sequence, and each name is what its pattern writes.
    const members = sequences.flatMap((s) =>
      s.files.map((f) => [f.name, frameFileName(s, f.frame)]),
    );
    expect(members.map(([n]) => n).sort()).toEqual([...names].sort());
    for (const [name, written] of members) expect(written).toBe(name);
  });

  it('reads negative frames with the sign inside the printf width', () => {
    const names = ['beauty.-002.exr', 'beauty.-001.exr', 'beauty.0000.exr', 'beauty.0001.exr'];
    const { sequences } = detectSequences(files(names));
    expect(sequences).toHaveLength(1);
    const seq = sequences[0]!;
    expect(seq).toMatchObject({ padding: 4, frames: [-2, -1, 0, 1], first: -2, last: 1 });
    expect(frameFileName(seq, -1)).toBe('beauty.-001.exr');
    expect(frameFileName(seq, -12345)).toBe('beauty.-12345.exr');
    expect(formatSequencePattern(seq, 'range')).toBe('beauty.-2-1#.exr');
    // The range form parses back to the same frames.
    expect(parseSequencePattern(formatSequencePattern(seq, 'range')).frames).toEqual([
      -2, -1, 0, 1,
    ]);
  });

  it('reads a sign before the padded digits (builtin-render: -0002 beside 0002) as one sequence', () => {
    const names = ['frame_-0002.png', 'frame_-0001.png', 'frame_0000.png', 'frame_0001.png'];
    const { sequences } = detectSequences(files(names));
    expect(sequences).toHaveLength(1);
    const seq = sequences[0]!;
    expect(seq).toMatchObject({ padding: 4, frames: [-2, -1, 0, 1], signOutsidePadding: true });
    expect(seq.files.map((f) => frameFileName(seq, f.frame))).toEqual(names);
    // printf-style files stay printf.
    const printf = detectSequences(files(['f.-002.png', 'f.0000.png'])).sequences;
    expect(printf).toHaveLength(1);
    expect(printf[0]!.signOutsidePadding).toBeUndefined();
    // Only negatives: nothing to tell the two apart; printf reads them back the same.
    const onlyNegative = detectSequences(files(['g.-0002.png', 'g.-0001.png'])).sequences[0]!;
    expect(onlyNegative.files.map((f) => frameFileName(onlyNegative, f.frame))).toEqual([
      'g.-0002.png',
      'g.-0001.png',
    ]);
  });

  it('treats a dash after a letter as a separator, not a sign', () => {
    const { sequences } = detectSequences(files(['shot-0001.exr', 'shot-0002.exr']));
    expect(sequences[0]).toMatchObject({ head: 'shot-', frames: [1, 2], padding: 4 });
  });

  it('keeps files without a frame number, lone versioned files and dates as singles', () => {
    const { sequences, singles } = detectSequences(
      files([
        'scene.blend',
        'scene_v012.blend',
        'notes.txt',
        'render_20261201123456.log',
        'v001/readme.txt',
        'beauty.1001.exr',
      ]),
    );
    expect(singles.map((s) => s.name)).toEqual([
      'notes.txt',
      'render_20261201123456.log',
      'scene.blend',
      'scene_v012.blend',
      'v001/readme.txt',
    ]);
    // A lone beauty.1001.exr is a one-frame render, not a stray file.
    expect(sequences.map((s) => [s.head, s.frames])).toEqual([['beauty.', [1001]]]);
  });

  it('finds any padded sequence written by frameFileName again, frames and padding intact', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: -500, max: 20000 }), { minLength: 2, maxLength: 40 }),
        fc.integer({ min: 2, max: 6 }),
        fc.constantFrom('beauty.', 'sh010_beauty_v003.', 'out/r_'),
        (frames, padding, head) => {
          const pattern = { head, tail: '.exr', padding };
          const listed = frames.map((f) => ({ name: frameFileName(pattern, f), size: 1 }));
          const { sequences, singles } = detectSequences(listed);
          expect(singles).toEqual([]);
          // Every file lands in one sequence whose pattern writes its name back.
          const all = sequences.flatMap((s) => s.files.map((m) => ({ s, m })));
          expect(all.map(({ m }) => m.frame).sort((a, b) => a - b)).toEqual(
            [...frames].sort((a, b) => a - b),
          );
          for (const { s, m } of all) expect(frameFileName(s, m.frame)).toBe(m.name);
          // Zero-padded members keep the padding they were written with.
          if (listed.some((f) => /\.-?0\d/.test(f.name))) {
            expect(sequences.some((s) => s.padding === padding)).toBe(true);
          }
        },
      ),
    );
  });

  it('handles an empty listing', () => {
    expect(detectSequences([])).toEqual({ sequences: [], singles: [] });
  });
});

describe('parseSequencePattern / formatSequencePattern', () => {
  it.each<[string, { head: string; tail: string; padding: number; frames?: number[] }]>([
    ['beauty.####.exr', { head: 'beauty.', tail: '.exr', padding: 4 }],
    ['beauty.#.exr', { head: 'beauty.', tail: '.exr', padding: 1 }],
    ['beauty.@@@.exr', { head: 'beauty.', tail: '.exr', padding: 3 }],
    ['beauty.%04d.exr', { head: 'beauty.', tail: '.exr', padding: 4 }],
    ['beauty.%d.exr', { head: 'beauty.', tail: '.exr', padding: 1 }],
    ['shots/sh010/beauty.$F4.exr', { head: 'shots/sh010/beauty.', tail: '.exr', padding: 4 }],
    [
      'beauty.1001-1100#.exr',
      { head: 'beauty.', tail: '.exr', padding: 4, frames: range(1001, 1100) },
    ],
    ['beauty.1-3,7@@@.exr', { head: 'beauty.', tail: '.exr', padding: 3, frames: [1, 2, 3, 7] }],
    ['beauty.1-9x4#@.exr', { head: 'beauty.', tail: '.exr', padding: 5, frames: [1, 5, 9] }],
    ['beauty.-3--1#.exr', { head: 'beauty.', tail: '.exr', padding: 4, frames: [-3, -2, -1] }],
    ['shot10_1-2##.exr', { head: 'shot10_', tail: '.exr', padding: 8, frames: [1, 2] }],
    [
      'beauty.%04d.exr [1001-1003, 1005]',
      { head: 'beauty.', tail: '.exr', padding: 4, frames: [1001, 1002, 1003, 1005] },
    ],
  ])('reads %s', (text, expected) => {
    expect(parseSequencePattern(text)).toEqual({ frames: undefined, ...expected });
  });

  it('round-trips every style', () => {
    const pattern = {
      head: 'out/beauty.',
      tail: '.exr',
      padding: 4,
      frames: [1001, 1002, 1003, 1010],
    };
    for (const style of ['hash', 'printf', 'range'] as const) {
      const parsed = parseSequencePattern(formatSequencePattern(pattern, style));
      expect(parsed).toMatchObject({ head: pattern.head, tail: pattern.tail, padding: 4 });
      if (style === 'range') expect(parsed.frames).toEqual(pattern.frames);
    }
    expect(formatSequencePattern({ ...pattern, padding: 6 }, 'range')).toBe(
      'out/beauty.1001-1003,1010#@@.exr',
    );
    expect(parseSequencePattern('out/beauty.1001-1003,1010#@@.exr').padding).toBe(6);
  });

  it.each<[string, RegExp]>([
    ['beauty.exr', /no frame placeholder/],
    ['beauty.####.%04d.exr', /more than one/],
    ['beauty.##.##.exr', /more than one/],
    ['beauty.1-3#.exr [1-3]', /written twice/],
    ['beauty.%012d.exr', /padding must be 1 to 10/],
    ['beauty.%04d.exr [1-z]', /frame/],
    ['x'.repeat(5000) + '.####.exr', /longer than/],
  ])('refuses %s naming the field', (text, message) => {
    const err = patternError(text);
    expect(err.code).toBe('invalid_input');
    expect(err.field).toBe('review.pattern');
    expect(err.message).toMatch(message);
  });
});

describe('checkSequence', () => {
  it('lists missing, empty and unexpected frames', () => {
    const listed: ListedFile[] = [
      ...range(1, 10)
        .filter((f) => f !== 4 && f !== 7)
        .map((f) => ({ name: `b.${String(f).padStart(4, '0')}.exr`, size: f === 5 ? 0 : 10 })),
      { name: 'b.0042.exr', size: 10 },
    ];
    const seq = detectSequences(listed).sequences[0]!;
    const check = checkSequence(seq, range(1, 10));
    expect(check).toEqual({ missing: [4, 7], empty: [5], unexpected: [42], complete: false });
  });

  it('is complete when every expected frame has bytes, whatever order the list is in', () => {
    const seq = detectSequences(files(range(1, 5).map((f) => `b.${f}.png`))).sequences[0]!;
    expect(checkSequence(seq, [5, 3, 1, 2, 4, 3])).toEqual({
      missing: [],
      empty: [],
      unexpected: [],
      complete: true,
    });
  });

  it('finds every frame missing when nothing was rendered', () => {
    expect(checkSequence(undefined, [1, 2])).toMatchObject({ missing: [1, 2], complete: false });
  });
});
