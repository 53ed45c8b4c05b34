/**
 * Image sequences: a version folder holds `beauty.1001.exr … beauty.1100.exr`, and the farm
 * wants to see one sequence (`beauty.1001-1100#.exr`), its padding, its frames and its holes,
 * not a hundred files. No npm package does this (clique and fileseq are Python), so this is a
 * small pure parser.
 *
 * Exported API:
 *
 * - `detectSequences(files)` groups `{ name, size }` entries into `FrameSequence`s and
 *   `singles` (files without a frame number, or a lone numbered file that does not look like
 *   a frame). Padding changes (`beauty.999.exr` → `beauty.1000.exr` at padding 3, versus
 *   `beauty.0999.exr` at padding 4) and negative frames (`beauty.-001.exr`) are handled.
 * - `parseSequencePattern(text)` reads a pattern in any of the usual notations:
 *   `beauty.####.exr`, `beauty.@@@@.exr`, `beauty.%04d.exr`, `beauty.$F4.exr`, with
 *   optional frames `beauty.1001-1100#.exr` (fileseq) or `beauty.%04d.exr [1001-1100]`
 *   (clique).
 * - `formatSequencePattern(pattern, style)` writes one back (`hash`, `printf` — what ffmpeg's
 *   image2 reader takes — or `range`); `frameFileName(pattern, frame)` names one frame's file.
 * - `checkSequence(sequence, expectedFrames)` lists missing frames, empty (0-byte) files and
 *   frames nobody asked for; `sequenceHoles(sequence)` lists the gaps between first and last.
 *
 * Padding follows printf: it is the minimum width of the frame number *including* its sign,
 * so `%04d` writes frame -1 as `-001` and frame 12345 as `12345`. Padding 1 is `%d`. Files
 * that put the sign before the padded digits (`-0001` beside `0001`, builtin-render's way)
 * are detected as one sequence marked `signOutsidePadding`; the notations cannot say that,
 * so `formatSequencePattern` writes such a sequence as if it were printf.
 *
 * Hash notation: in a bare pattern each `#` is one digit (`####` = 4, the Nuke/Deadline
 * reading); in a pattern with frames (`1001-1100#`) the fileseq reading applies: `#` = 4
 * digits and `@` = 1 digit, summed (`#@@` = 6). `@` is one digit everywhere.
 */
import { invalid } from './errors.js';
import { MAX_FRAME_MAGNITUDE, formatFrameList, parseFrameList } from './frames.js';

/** One file as listed from a folder: its name (may hold `/`-separated sub-folders) and bytes. */
export interface ListedFile {
  name: string;
  size: number;
}

/** One frame's file in a sequence. */
export interface SequenceMember extends ListedFile {
  frame: number;
}

/** How a sequence's file names are spelled: `head` + frame at `padding` + `tail`. */
export interface SequencePattern {
  /** Everything before the frame number, e.g. `renders/beauty.`. */
  head: string;
  /** Everything after it, e.g. `.exr`. */
  tail: string;
  /** Minimum width of the frame number including its sign (printf); 1 means unpadded. */
  padding: number;
  /**
   * Negative frames are written as a sign before `padding` digits (`-0002` beside `0002`, as
   * Drover's builtin-render does) instead of printf's sign-inside-the-width (`-002`). Only
   * `detectSequences` sets it, when the files say so; absent means printf.
   */
  signOutsidePadding?: boolean;
}

/** A pattern with the frames it names, as read by `parseSequencePattern`. */
export interface ParsedPattern extends SequencePattern {
  /** The frames written with the pattern (`1001-1100#`), or undefined when none were. */
  frames: number[] | undefined;
}

/** Files that share one pattern. */
export interface FrameSequence extends SequencePattern {
  /** Its frames, ascending and distinct. */
  frames: number[];
  /** Its files in frame order. */
  files: SequenceMember[];
  first: number;
  last: number;
  /** Total bytes of its files. */
  bytes: number;
}

export interface DetectedFiles {
  /** Sequences sorted by head, tail, then padding. */
  sequences: FrameSequence[];
  /** Files that are not part of a sequence, sorted by name. */
  singles: ListedFile[];
}

export interface SequenceCheck {
  /** Expected frames with no file, ascending. */
  missing: number[];
  /** Expected frames whose file has 0 bytes, ascending. */
  empty: number[];
  /** Frames on disk that were not expected, ascending. */
  unexpected: number[];
  /** No expected frame is missing or empty. */
  complete: boolean;
}

/** A pattern longer than this is refused before parsing. */
export const MAX_PATTERN_LENGTH = 4096;
/** Wider padding than this is refused (no renderer writes more digits than a frame has). */
export const MAX_PADDING = 10;

/**
 * The frame number: the last run of digits in the base name, with a `-` sign when the `-`
 * follows a `.` or `_` (`beauty.-001.exr`; in `beauty-0001.exr` the dash is a separator).
 * The tail after it holds no digit and no `/`.
 */
const NUMBERED = /^(.*?)((?<=(?:^|[._/]))-)?(\d+)([^\d/]*)$/s;
/** A lone numbered file is a one-frame sequence only when the number stands apart like this. */
const FRAME_LIKE = /(?:^|[._/])-?\d+$/;

interface Numbered extends ListedFile {
  head: string;
  tail: string;
  frame: number;
  /** Characters of the number including its sign. */
  width: number;
  /** Zero-padded (`0042`, `-001`): its padding is exactly its width. */
  padded: boolean;
}

function readNumber(file: ListedFile): Numbered | undefined {
  const m = NUMBERED.exec(file.name);
  if (!m) return undefined;
  const [, head = '', sign = '', digits = '', tail = ''] = m;
  const magnitude = Number(digits);
  if (digits.length > MAX_PADDING || magnitude > MAX_FRAME_MAGNITUDE) return undefined;
  const frame = sign ? -magnitude : magnitude;
  return {
    ...file,
    head,
    tail,
    frame: frame === 0 ? 0 : frame, // never -0
    width: sign.length + digits.length,
    padded: digits.length > 1 && digits.startsWith('0'),
  };
}

function byFrame(a: { frame: number }, b: { frame: number }): number {
  return a.frame - b.frame;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function makeSequence(
  head: string,
  tail: string,
  padding: number,
  files: Numbered[],
): FrameSequence {
  const members = files.map(({ name, size, frame }) => ({ name, size, frame })).sort(byFrame);
  return {
    head,
    tail,
    padding,
    frames: members.map((m) => m.frame),
    files: members,
    first: members[0]!.frame,
    last: members[members.length - 1]!.frame,
    bytes: members.reduce((sum, m) => sum + m.size, 0),
  };
}

/**
 * Splits the numbered files of one head/tail into sequences by padding.
 *
 * A zero-padded number (`0999`) fixes its sequence's padding to its width. A number without
 * a leading zero (`1000`) fits any padding up to its width: it joins the widest padded
 * sequence it fits that does not have its frame yet. The rest form one sequence whose padding
 * is their narrowest width, so an unpadded run `1001…1100` reads as `%04d` (what wrote it),
 * not as `%d` (clique's pitfall), and `998, 999, 1000` reads as `%03d`.
 */
function splitByPadding(files: Numbered[]): Numbered[][] {
  const byWidth = new Map<number, Map<number, Numbered>>();
  const loose: Numbered[] = [];
  for (const f of files) {
    if (!f.padded) {
      loose.push(f);
      continue;
    }
    let group = byWidth.get(f.width);
    if (!group) byWidth.set(f.width, (group = new Map<number, Numbered>()));
    group.set(f.frame, f);
  }
  const widths = [...byWidth.keys()].sort((a, b) => b - a);
  const rest: Numbered[] = [];
  for (const f of loose) {
    const width = widths.find((w) => w <= f.width && !byWidth.get(w)!.has(f.frame));
    if (width === undefined) rest.push(f);
    else byWidth.get(width)!.set(f.frame, f);
  }
  const groups = widths.map((w) => [...byWidth.get(w)!.values()]);
  if (rest.length > 0) groups.push(rest);
  return groups;
}

/**
 * Groups listed files into frame sequences and single files. Files whose names differ only
 * in the frame number form one sequence per padding (see the module comment). A group of one
 * file is a one-frame sequence when its number stands apart (`beauty.1001.exr`,
 * `shot_0001.png`) and a single file otherwise (`scene_v012.blend`). A number wider than
 * `MAX_PADDING` digits or beyond `MAX_FRAME_MAGNITUDE` (a date, a hash) is not a frame.
 */
export function detectSequences(files: readonly ListedFile[]): DetectedFiles {
  const groups = new Map<string, { head: string; tail: string; files: Numbered[] }>();
  const singles: ListedFile[] = [];
  for (const file of files) {
    const numbered = readNumber(file);
    if (!numbered) {
      singles.push({ name: file.name, size: file.size });
      continue;
    }
    // NUL cannot be in a file name, so it separates head and tail unambiguously.
    const key = `${numbered.head}\0${numbered.tail}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { head: numbered.head, tail: numbered.tail, files: [] }));
    group.files.push(numbered);
  }

  const sequences: FrameSequence[] = [];
  for (const { head, tail, files: members } of groups.values()) {
    if (members.length === 1) {
      const only = members[0]!;
      const stem = only.name.slice(0, only.name.length - only.tail.length);
      if (!FRAME_LIKE.test(stem) || !only.tail.startsWith('.')) {
        singles.push({ name: only.name, size: only.size });
        continue;
      }
    }
    const parts = splitByPadding(members).map((part) => ({
      part,
      padding: part.some((f) => f.padded)
        ? part.find((f) => f.padded)!.width
        : Math.min(...part.map((f) => f.width)),
      signOutside: false,
    }));
    // A renderer that pads the digits and puts the sign in front writes -0002 beside 0002:
    // zero-padded negatives one wider than a sequence without negatives join it.
    for (const neg of [...parts]) {
      if (!neg.part.every((f) => f.frame < 0 && f.padded)) continue;
      const frames = new Set(neg.part.map((f) => f.frame));
      const host = parts.find(
        (p) =>
          p !== neg &&
          p.padding === neg.padding - 1 &&
          p.part.every((f) => f.frame >= 0) &&
          !p.part.some((f) => frames.has(f.frame)),
      );
      if (!host) continue;
      host.part.push(...neg.part);
      host.signOutside = true;
      parts.splice(parts.indexOf(neg), 1);
    }
    for (const { part, padding, signOutside } of parts) {
      const sequence = makeSequence(head, tail, padding, part);
      if (signOutside) sequence.signOutsidePadding = true;
      sequences.push(sequence);
    }
  }
  sequences.sort(
    (a, b) =>
      compareStrings(a.head, b.head) || compareStrings(a.tail, b.tail) || a.padding - b.padding,
  );
  singles.sort((a, b) => compareStrings(a.name, b.name));
  return { sequences, singles };
}

/**
 * The file name of `frame` in `pattern`: printf `%0<padding>d`, sign included in the width
 * (`-001` at padding 4), or before the padded digits with `signOutsidePadding` (`-0001`).
 */
export function frameFileName(pattern: SequencePattern, frame: number): string {
  return `${pattern.head}${padFrame(frame, pattern.padding, pattern.signOutsidePadding)}${pattern.tail}`;
}

function padFrame(frame: number, padding: number, signOutside = false): string {
  const digits = String(Math.abs(frame));
  if (frame < 0) return `-${digits.padStart(signOutside ? padding : padding - 1, '0')}`;
  return digits.padStart(padding, '0');
}

/** fileseq's padding characters: `#` = 4 digits, `@` = 1. */
function fileseqPadding(padding: number): string {
  return '#'.repeat(Math.floor(padding / 4)) + '@'.repeat(padding % 4);
}

export type PatternStyle = 'hash' | 'printf' | 'range';

/**
 * Writes a pattern: `hash` → `beauty.####.exr` (one `#` per digit), `printf` →
 * `beauty.%04d.exr` (`%d` when unpadded; ffmpeg's image2 input takes this), `range` →
 * `beauty.1001-1100#.exr` (fileseq, with the frames of `sequence` compacted as
 * `1-10,20-30`; a pattern without frames is written as `beauty.#.exr`).
 */
export function formatSequencePattern(
  pattern: SequencePattern & { frames?: readonly number[] | undefined },
  style: PatternStyle,
): string {
  const { head, tail, padding } = pattern;
  switch (style) {
    case 'hash':
      return `${head}${'#'.repeat(padding)}${tail}`;
    case 'printf':
      return `${head}${padding > 1 ? `%0${padding}d` : '%d'}${tail}`;
    case 'range': {
      const frames = pattern.frames ? [...pattern.frames].sort((a, b) => a - b) : [];
      return `${head}${frames.length > 0 ? formatFrameList(frames) : ''}${fileseqPadding(padding)}${tail}`;
    }
  }
}

function checkPadding(padding: number, field: string): number {
  if (!Number.isInteger(padding) || padding < 1 || padding > MAX_PADDING) {
    throw invalid(field, `padding must be 1 to ${MAX_PADDING} digits, got ${padding}`);
  }
  return padding;
}

/** `%d`, `%4d`, `%04d`. */
const PRINTF = /%(0?)(\d*)d/;
/** Houdini's `$F`, `$F4`. */
const HOUDINI = /\$F(\d*)/;
/** A run of `#`/`@`, optionally preceded by a fileseq frame list `1001-1100`, `1-10,20-30x2`. */
const HASHES = /((?:-?\d+(?:(?:-|:)-?\d+(?:x\d+)?)?)(?:,-?\d+(?:(?:-|:)-?\d+(?:x\d+)?)?)*)?([#@]+)/;
/** clique's trailing frames: `head%04dtail [1001-1100, 1200]`. */
const BRACKET_FRAMES = /^(.*?)\s+\[([^\]]*)\]$/s;

/**
 * Reads a sequence pattern; throws `invalid_input` naming `field` when `text` has no frame
 * placeholder, has more than one, or has bad frames or padding. Forms: `beauty.####.exr`,
 * `beauty.@@@.exr`, `beauty.%04d.exr`, `beauty.%d.exr`, `beauty.$F4.exr`,
 * `beauty.1001-1100#.exr`, `beauty.1-10,20-30@@@.exr`, `beauty.%04d.exr [1001-1100]`.
 */
export function parseSequencePattern(text: string, field = 'pattern'): ParsedPattern {
  if (text.length > MAX_PATTERN_LENGTH) {
    throw invalid(field, `pattern is longer than ${MAX_PATTERN_LENGTH} characters`);
  }
  let body = text;
  let frames: number[] | undefined;
  const bracket = BRACKET_FRAMES.exec(text.trimEnd());
  if (bracket) {
    body = bracket[1]!;
    frames = parseFrameList(bracket[2]!, field);
  }

  const candidates: { index: number; length: number; padding: number; framesText?: string }[] = [];
  const printf = PRINTF.exec(body);
  if (printf) {
    const width = printf[2] ? Number(printf[2]) : 1;
    candidates.push({ index: printf.index, length: printf[0].length, padding: width });
  }
  const houdini = HOUDINI.exec(body);
  if (houdini) {
    const width = houdini[1] ? Number(houdini[1]) : 1;
    candidates.push({ index: houdini.index, length: houdini[0].length, padding: width });
  }
  const hashes = HASHES.exec(body);
  if (hashes) {
    const framesText = hashes[1];
    const chars = hashes[2]!;
    if (framesText !== undefined) {
      if (frames !== undefined) throw invalid(field, `frames are written twice in "${text}"`);
      const padding = [...chars].reduce((n, c) => n + (c === '#' ? 4 : 1), 0);
      candidates.push({ index: hashes.index, length: hashes[0].length, padding, framesText });
    } else {
      candidates.push({ index: hashes.index, length: chars.length, padding: chars.length });
    }
  }
  if (candidates.length === 0) {
    throw invalid(field, `no frame placeholder (#, @, %04d, $F4) in "${text}"`);
  }
  if (candidates.length > 1) {
    throw invalid(field, `more than one frame placeholder in "${text}"`);
  }
  const only = candidates[0]!;
  const rest = body.slice(only.index + only.length);
  if (PRINTF.test(rest) || HOUDINI.test(rest) || /[#@]/.test(rest)) {
    throw invalid(field, `more than one frame placeholder in "${text}"`);
  }
  if (only.framesText !== undefined) frames = parseFrameList(only.framesText, field);
  return {
    head: body.slice(0, only.index),
    tail: rest,
    padding: checkPadding(only.padding, field),
    frames: frames === undefined ? undefined : [...new Set(frames)].sort((a, b) => a - b),
  };
}

/**
 * Checks a sequence against the frames a job was asked to render: `missing` expected frames
 * with no file, `empty` expected frames whose file has 0 bytes (a renderer that died after
 * opening its output), and `unexpected` frames on disk outside the list. `sequence` may be
 * undefined (nothing was found): every expected frame is then missing.
 */
export function checkSequence(
  sequence: Pick<FrameSequence, 'files'> | undefined,
  expectedFrames: readonly number[],
): SequenceCheck {
  const onDisk = new Map<number, SequenceMember>();
  for (const member of sequence?.files ?? []) onDisk.set(member.frame, member);
  const expected = new Set(expectedFrames);
  const missing: number[] = [];
  const empty: number[] = [];
  for (const frame of [...expected].sort((a, b) => a - b)) {
    const member = onDisk.get(frame);
    if (!member) missing.push(frame);
    else if (member.size === 0) empty.push(frame);
  }
  const unexpected = [...onDisk.keys()].filter((f) => !expected.has(f)).sort((a, b) => a - b);
  return { missing, empty, unexpected, complete: missing.length === 0 && empty.length === 0 };
}

/** The gaps between a sequence's first and last frame, as inclusive ranges, ascending. */
export function sequenceHoles(sequence: Pick<FrameSequence, 'frames'>): {
  first: number;
  last: number;
}[] {
  const holes: { first: number; last: number }[] = [];
  const frames = [...sequence.frames].sort((a, b) => a - b);
  for (let i = 1; i < frames.length; i++) {
    const prev = frames[i - 1]!;
    const next = frames[i]!;
    if (next - prev > 1) holes.push({ first: prev + 1, last: next - 1 });
  }
  return holes;
}
