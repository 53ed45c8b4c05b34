import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { formatFrameList } from '../../../core/frames.js';
import {
  checkSequence,
  detectSequences,
  formatSequencePattern,
  type FrameSequence,
  type ListedFile,
} from '../../../core/sequences.js';
import type { Representation } from '../../../core/versions.js';

/** Sub-folders of a version folder that hold the publish flow's own files, not renders. */
export const SCENE_FOLDER = 'scene';
export const REVIEW_FOLDER = 'review';

/** Bounds of one scan: a version folder with more is refused rather than read for minutes. */
export const MAX_SCAN_FILES = 200_000;
const MAX_DEPTH = 4;

/**
 * Lists a version folder's files (names relative to it, `/`-separated) with their sizes,
 * leaving out the scene snapshot and review media folders. Symbolic links are not followed.
 */
export async function listVersionFolder(dir: string): Promise<ListedFile[]> {
  const files: ListedFile[] = [];
  const walk = async (rel: string, depth: number): Promise<void> => {
    const entries = await readdir(join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      const name = rel ? `${rel}/${e.name}` : e.name;
      if (depth === 0 && (e.name === SCENE_FOLDER || e.name === REVIEW_FOLDER)) continue;
      if (e.isDirectory()) {
        if (depth < MAX_DEPTH) await walk(name, depth + 1);
      } else if (e.isFile()) {
        if (files.length >= MAX_SCAN_FILES) {
          throw new Error(`${dir} holds more than ${MAX_SCAN_FILES} files`);
        }
        files.push({ name, size: (await lstat(join(dir, name))).size });
      }
    }
  };
  await walk('', 0);
  return files;
}

function extOf(tail: string): string {
  const m = /\.([A-Za-z0-9]{1,16})$/.exec(tail);
  return m ? m[1]!.toLowerCase() : '';
}

/** A sequence's name: its head without the separator before the frame number. */
function sequenceName(head: string): string {
  const base = head.split('/').pop() ?? head;
  return base.replace(/[._-]+$/, '') || base || 'frames';
}

export interface ScanResult {
  representations: Representation[];
  sequences: FrameSequence[];
  /** Frames asked for that are missing or empty in some sequence, ascending. */
  missingFrames: number[];
}

/**
 * What a version folder holds, checked against the frames its job was to render: every
 * sequence must have each of them (a missing or 0-byte frame makes the version incomplete).
 * Without a job (a folder published as it is), each sequence is checked against its own
 * first-to-last range, so a hole still shows. No sequence at all: every frame is missing.
 */
export function scanResult(files: readonly ListedFile[], expected?: readonly number[]): ScanResult {
  const { sequences, singles } = detectSequences(files);
  const missing = new Set<number>();
  const representations: Representation[] = [];
  for (const s of sequences) {
    const frames = expected ?? Array.from({ length: s.last - s.first + 1 }, (_, i) => s.first + i);
    const check = checkSequence(s, frames);
    for (const f of [...check.missing, ...check.empty]) missing.add(f);
    representations.push({
      name: sequenceName(s.head),
      ext: extOf(s.tail),
      pattern: formatSequencePattern(s, 'hash'),
      frames: formatFrameList(s.frames),
      first: s.first,
      last: s.last,
      padding: s.padding,
      fileCount: s.files.length,
      bytes: s.bytes,
    });
  }
  for (const f of singles) {
    representations.push({
      name: f.name,
      ext: extOf(f.name),
      pattern: f.name,
      frames: '',
      first: null,
      last: null,
      padding: 0,
      fileCount: 1,
      bytes: f.size,
    });
  }
  if (sequences.length === 0 && expected) for (const f of expected) missing.add(f);
  return {
    representations,
    sequences,
    missingFrames: [...missing].sort((a, b) => a - b),
  };
}

const REVIEWABLE = new Set([
  'png',
  'jpg',
  'jpeg',
  'exr',
  'tif',
  'tiff',
  'dpx',
  'tga',
  'bmp',
  'webp',
]);

/** The sequence the review movie is made of: the longest image sequence (first by name on a tie). */
export function reviewSequence(sequences: readonly FrameSequence[]): FrameSequence | undefined {
  let best: FrameSequence | undefined;
  for (const s of sequences) {
    if (!REVIEWABLE.has(extOf(s.tail))) continue;
    if (!best || s.files.length > best.files.length) best = s;
  }
  return best;
}
