import { invalid } from './errors.js';

/** At most this many frames in one job (issue: 1,000,000). */
export const MAX_FRAMES_PER_JOB = 1_000_000;
/** Frame numbers stay well inside safe integers and SQL integer columns. */
export const MAX_FRAME_MAGNITUDE = 1_000_000_000;
/** A frame list spec longer than this is refused before parsing. */
export const MAX_FRAME_SPEC_LENGTH = 10_000;

const RANGE = /^(-?\d+)(?:-(-?\d+)(?:[x:](\d+))?)?$/;

/**
 * Parses a Deadline-style frame list: `1-100`, `1-100x5` (step; `:` also accepted),
 * `1,3,7`, `10-1` (descending), negative frames (`-5--1`, `-10-10`) and any mix of them
 * separated by commas or spaces. Frames keep the order they are written in; repeats are
 * dropped (the first one wins). Throws `invalid_input` naming `field` on bad input or on
 * more than `maxFrames` frames — counted before expanding, so a huge range costs nothing.
 */
export function parseFrameList(
  spec: string,
  field = 'frames',
  maxFrames = MAX_FRAMES_PER_JOB,
): number[] {
  if (spec.length > MAX_FRAME_SPEC_LENGTH) {
    throw invalid(field, `frame list is longer than ${MAX_FRAME_SPEC_LENGTH} characters`);
  }
  const tokens = spec
    .split(/[\s,]+/)
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (tokens.length === 0) throw invalid(field, 'frame list is empty');

  const ranges: Array<{ start: number; end: number; step: number }> = [];
  let total = 0;
  for (const token of tokens) {
    const m = RANGE.exec(token);
    if (!m) {
      throw invalid(
        field,
        `"${token}" is not a frame, a range (1-100) or a stepped range (1-100x5)`,
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
    total += Math.floor(Math.abs(end - start) / step) + 1;
    if (total > maxFrames) {
      throw invalid(field, `frame list has more than ${maxFrames} frames`);
    }
    ranges.push({ start, end, step });
  }

  const seen = new Set<number>();
  const frames: number[] = [];
  for (const { start, end, step } of ranges) {
    const dir = end >= start ? 1 : -1;
    for (let f = start; dir > 0 ? f <= end : f >= end; f += dir * step) {
      if (!seen.has(f)) {
        seen.add(f);
        frames.push(f);
      }
    }
  }
  return frames;
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
