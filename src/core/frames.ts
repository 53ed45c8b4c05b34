import { invalid } from './errors.js';

/** At most this many frames in one job (issue: 1,000,000). */
export const MAX_FRAMES_PER_JOB = 1_000_000;
/** Frame numbers stay well inside safe integers and SQL integer columns. */
export const MAX_FRAME_MAGNITUDE = 1_000_000_000;
/** A frame list spec longer than this is refused before parsing. */
export const MAX_FRAME_SPEC_LENGTH = 10_000;

/**
 * One token of a frame list: a frame, or a range `a-b` / `a:b` with an optional step written
 * `x5`, `step5`, `by5`, `every5` or `:5` (Deadline's spellings; `1-100:5` too). Case does
 * not matter. Frames may be negative: `-5--1`, `-10:-1`.
 */
const RANGE = /^(-?\d+)(?:(?:-|:)(-?\d+)(?:(?:x|step|by|every|:)(\d+))?)?$/i;

/** A range as written: from `start` towards `end` (either way) by `step`. */
interface Run {
  start: number;
  end: number;
  step: number;
  /** Its frames: `start + k × dir × step` for k in [0, count). */
  count: number;
  dir: 1 | -1;
}

/**
 * A frame list may spell one frame many times; expanding it would cost time for frames
 * already seen. Frames visited beyond this many times the budget mean a list built to make
 * the parser work (overlapping stepped ranges of unrelated steps), and it is refused.
 */
const MAX_VISITS_PER_FRAME = 8;

/**
 * Parses a frame list in Deadline's syntax: single frames, ranges `1-100` or `1:100`,
 * stepped ranges `1-100x5`, `500-600step4`, `1-100by5`, `1-100every5`, `1:100:5`,
 * descending ranges `10-1`, negative frames `-5--1` / `-10:-1`, separated by commas and/or
 * spaces. Frames keep the order they are written in; a frame written twice (`1-10,5`,
 * `1-100,1-100`) is rendered once, at its first place.
 *
 * Throws `invalid_input` naming `field` on bad input, or when the list has more than
 * `maxFrames` distinct frames. The budget counts distinct frames (`1-1000000,1-1000000` is
 * 1,000,000), checked as frames are produced, so a huge list fails before any large array
 * exists; a range already covered by an earlier range on the same or a coarser grid
 * (`1-1000000` twice, `1-100x10` after `1-100`) is skipped without visiting its frames.
 */
export function parseFrameList(
  spec: string,
  field = 'frames',
  maxFrames = MAX_FRAMES_PER_JOB,
): number[] {
  if (spec.length > MAX_FRAME_SPEC_LENGTH) {
    throw invalid(field, `frame list is longer than ${MAX_FRAME_SPEC_LENGTH} characters`);
  }
  const tokens = spec.split(/[\s,]+/).filter((t) => t.length > 0);
  if (tokens.length === 0) throw invalid(field, 'frame list is empty');

  const runs = tokens.map((token) => parseRun(token, field));
  // One range alone over the budget: its frames are distinct, so refuse before expanding.
  if (runs.some((r) => r.count > maxFrames)) {
    throw invalid(field, `frame list has more than ${maxFrames} frames`);
  }
  const seen = frameSet(runs);
  const frames: number[] = [];
  const visitBudget = maxFrames * MAX_VISITS_PER_FRAME + 10_000;
  let visits = 0;
  for (let i = 0; i < runs.length; i++) {
    const run = runs[i]!;
    for (const [from, to] of uncovered(run, runs.slice(0, i))) {
      for (let k = from; k < to; k++) {
        const f = run.start + k * run.dir * run.step;
        if (++visits > visitBudget) {
          throw invalid(field, 'frame list repeats too many frames: write each range once');
        }
        if (seen.has(f)) continue;
        if (frames.length === maxFrames) {
          throw invalid(field, `frame list has more than ${maxFrames} frames`);
        }
        seen.add(f);
        frames.push(f);
      }
    }
  }
  return frames;
}

/** Frames spanning fewer numbers than this are tracked in a bit set (≤ 2 MiB), not a Set. */
const BITSET_SPAN = 1 << 24;

/**
 * The set of frames seen so far. A bit set over the list's span when it is small (nearly
 * every real list): a lookup costs a few nanoseconds instead of a hash probe, which keeps a
 * list that revisits frames cheap to refuse.
 */
function frameSet(runs: readonly Run[]): { has(f: number): boolean; add(f: number): void } {
  let lo = Infinity;
  let hi = -Infinity;
  let frames = 0;
  for (const r of runs) {
    const [a, b] = bounds(r);
    lo = Math.min(lo, a);
    hi = Math.max(hi, b);
    frames += r.count;
  }
  // Short lists (a task's chunk, read back on every task listing) need no bit set.
  if (frames <= 4096 || hi - lo >= BITSET_SPAN) return new Set<number>();
  const bits = new Uint8Array(((hi - lo) >> 3) + 1);
  return {
    has: (f) => (bits[(f - lo) >> 3]! & (1 << ((f - lo) & 7))) !== 0,
    add: (f) => {
      const i = (f - lo) >> 3;
      bits[i] = bits[i]! | (1 << ((f - lo) & 7));
    },
  };
}

function parseRun(token: string, field: string): Run {
  const m = RANGE.exec(token);
  if (!m) {
    throw invalid(
      field,
      `"${token}" is not a frame (7), a range (1-100, 1:100) or a stepped range (1-100x5, 1-100step5, 1-100by5, 1-100every5, 1:100:5)`,
    );
  }
  // `+ 0` turns `-0` into 0: a frame list never holds a negative zero.
  const start = Number(m[1]) + 0;
  const end = m[2] === undefined ? start : Number(m[2]) + 0;
  const step = m[3] === undefined ? 1 : Number(m[3]);
  for (const n of [start, end]) {
    if (Math.abs(n) > MAX_FRAME_MAGNITUDE) {
      throw invalid(field, `frame ${n} is outside ±${MAX_FRAME_MAGNITUDE}`);
    }
  }
  if (step < 1 || step > MAX_FRAME_MAGNITUDE) {
    throw invalid(field, `step in "${token}" must be between 1 and ${MAX_FRAME_MAGNITUDE}`);
  }
  const dir = end >= start ? 1 : -1;
  return { start, end, step, dir, count: Math.floor(Math.abs(end - start) / step) + 1 };
}

/** The lowest and highest frame a run produces. */
function bounds(r: Run): [number, number] {
  const last = r.start + (r.count - 1) * r.dir * r.step;
  return r.dir > 0 ? [r.start, last] : [last, r.start];
}

/**
 * The index intervals `[from, to)` of `run`'s frames that no earlier run covers on a grid
 * containing `run`'s (same residue, a step dividing `run`'s step). Frames of earlier runs
 * on other grids are not subtracted here: they are found in the `seen` set one by one.
 */
function uncovered(run: Run, earlier: readonly Run[]): Array<[number, number]> {
  const [lo] = bounds(run);
  const covered: Array<[number, number]> = [];
  for (const e of earlier) {
    if (run.step % e.step !== 0) continue;
    const [elo, ehi] = bounds(e);
    if ((((lo - elo) % e.step) + e.step) % e.step !== 0) continue;
    // Indexes k of `run` whose frame start + k·dir·step lies in [elo, ehi].
    const a = (elo - run.start) / (run.dir * run.step);
    const b = (ehi - run.start) / (run.dir * run.step);
    const from = Math.max(0, Math.ceil(Math.min(a, b)));
    const to = Math.min(run.count, Math.floor(Math.max(a, b)) + 1);
    if (from < to) covered.push([from, to]);
  }
  covered.sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  let k = 0;
  for (const [from, to] of covered) {
    if (from > k) out.push([k, from]);
    k = Math.max(k, to);
  }
  if (k < run.count) out.push([k, run.count]);
  return out;
}

/**
 * Splits frames into chunks of `chunkSize` in order: one chunk is one task. Throws
 * `invalid_input` unless `chunkSize` is a positive integer (0 would never advance).
 */
export function chunkFrames(frames: readonly number[], chunkSize: number): number[][] {
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw invalid('chunkSize', `must be a positive integer, got ${chunkSize}`);
  }
  const chunks: number[][] = [];
  for (let i = 0; i < frames.length; i += chunkSize) chunks.push(frames.slice(i, i + chunkSize));
  return chunks;
}

/**
 * Writes frames back as a compact list: consecutive runs (ascending or descending) with a
 * constant step become ranges. `formatFrameList(parseFrameList(s))` parses to the same frames.
 */
export function formatFrameList(frames: readonly number[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < frames.length) {
    const start = frames[i]!;
    const next = frames[i + 1];
    if (next === undefined) {
      parts.push(String(start));
      break;
    }
    const delta = next - start;
    let j = i + 1;
    while (j + 1 < frames.length && frames[j + 1]! - frames[j]! === delta) j++;
    const runLength = j - i + 1;
    if (runLength >= 3 && delta !== 0) {
      const end = frames[j]!;
      const step = Math.abs(delta);
      parts.push(step === 1 ? `${start}-${end}` : `${start}-${end}x${step}`);
      i = j + 1;
    } else {
      parts.push(String(start));
      i += 1;
    }
  }
  return parts.join(',');
}
