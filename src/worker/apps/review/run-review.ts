import { spawn } from 'node:child_process';
import {
  access,
  mkdir,
  mkdtemp,
  readdir,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ReviewSettings } from '../../../core/app-settings.js';
import { formatFrameList } from '../../../core/frames.js';
import {
  type ListedFile,
  type SequenceMember,
  checkSequence,
  frameFileName,
  parseSequencePattern,
} from '../../../core/sequences.js';
import {
  type BurnIn,
  type FrameSource,
  type MovieKind,
  frameSource,
  isFilterSafePath,
  movieArgs,
  reviewOutputs,
  thumbnailArgs,
} from './ffmpeg-args.js';

/** The last line a review task prints: what it made, as JSON (see `ReviewResult`). */
export const REVIEW_RESULT_PREFIX = 'DROVER_REVIEW ';

export interface ReviewResult {
  thumbnail: string;
  mp4: string;
  /** null when the WebM was turned off. */
  webm: string | null;
  /** Frames in the movies: every frame asked for (a missing one shows the frame before it). */
  frames: number;
  /** Expected frames with no file or an empty one. */
  missing: number[];
  empty: number[];
  burnIn: boolean;
}

export interface ReviewRunOptions {
  /** The ffmpeg executable (a name looked up on PATH, or a path). */
  ffmpeg: string;
  /** The burn-in font; burn-in is skipped with a warning when it cannot be read. */
  fontFile: string;
  print: (line: string) => void;
}

/** At most this many ffmpeg error lines are passed on to the task log per run. */
const MAX_FFMPEG_LINES = 50;

/** Lists the folder holding the frames (file names relative to it, with sizes). */
async function listFrames(dir: string): Promise<ListedFile[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const listed: ListedFile[] = [];
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const { size } = await stat(join(dir, entry.name));
    listed.push({ name: entry.name, size });
  }
  return listed;
}

/**
 * Runs ffmpeg once; resolves with the frames it reported. `onFrame` gets each `frame=N` of
 * `-progress pipe:1`. Rejects naming the output when ffmpeg cannot start or exits non-zero.
 */
function runFfmpeg(
  ffmpeg: string,
  args: string[],
  what: string,
  print: (line: string) => void,
  onFrame: (frame: number) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpeg, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let frames = 0;
    let errorLines = 0;
    let stdoutRest = '';
    let stderrRest = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const lines = (stdoutRest + chunk).split('\n');
      stdoutRest = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^frame=(\d+)/.exec(line);
        if (m) {
          frames = Number(m[1]);
          onFrame(frames);
        }
      }
    });
    const passOn = (line: string) => {
      if (line.trim() === '' || errorLines >= MAX_FFMPEG_LINES) return;
      errorLines++;
      print(`ffmpeg: ${line.slice(0, 500)}`);
    };
    child.stderr.on('data', (chunk: string) => {
      const lines = (stderrRest + chunk).split('\n');
      stderrRest = lines.pop() ?? '';
      lines.forEach(passOn);
    });
    child.on('error', (err) => reject(new Error(`cannot run ffmpeg (${ffmpeg}): ${err.message}`)));
    child.on('close', (code, signal) => {
      passOn(stderrRest);
      if (code === 0) resolve(frames);
      else reject(new Error(`ffmpeg failed making ${what} (${signal ?? `exit code ${code}`})`));
    });
  });
}

async function readable(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes a version's review media: checks the frames on disk against `firstFrame…lastFrame`
 * (warning about missing and empty ones), then a thumbnail of the frame nearest the middle,
 * the MP4 and (unless turned off) the WebM, each written under a temporary name and renamed
 * so an output that exists is whole. Prints `Progress: N%` lines and, last, the result
 * (`REVIEW_RESULT_PREFIX` + JSON). Returns the process exit code; errors are printed as
 * `Error: …` (which fails the task).
 */
export async function runReview(
  settings: ReviewSettings,
  options: ReviewRunOptions,
): Promise<number> {
  const { print } = options;
  try {
    const result = await makeReview(settings, options);
    print(`${REVIEW_RESULT_PREFIX}${JSON.stringify(result)}`);
    return 0;
  } catch (err) {
    print(`Error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

async function makeReview(
  settings: ReviewSettings,
  options: ReviewRunOptions,
): Promise<ReviewResult> {
  const { print } = options;
  const pattern = parseSequencePattern(settings.inputPattern, 'pluginInfo.inputPattern');
  const frameDir = join(settings.inputDirectory, dirname(settings.inputPattern));
  const baseHead = pattern.head.slice(pattern.head.lastIndexOf('/') + 1);

  let listed: ListedFile[];
  try {
    listed = await listFrames(frameDir);
  } catch (err) {
    throw new Error(`cannot list the frames' folder ${frameDir}: ${(err as Error).message}`);
  }
  // Exactly the names ffmpeg's image2 reads (`%d` and `%04d` both read `1001`), so look
  // each expected frame up by the name the pattern gives it.
  const sizes = new Map(listed.map((f) => [f.name, f.size]));
  const expected: number[] = [];
  const files: SequenceMember[] = [];
  for (let f = settings.firstFrame; f <= settings.lastFrame; f++) {
    expected.push(f);
    // A negative frame may also be written with the sign before the padded digits (`-0002`
    // beside `0002`, builtin-render's way): ffmpeg could not read either, the links can.
    const names = [frameFileName({ ...pattern, head: baseHead }, f)];
    if (f < 0)
      names.push(frameFileName({ ...pattern, head: baseHead, signOutsidePadding: true }, f));
    const name = names.find((n) => sizes.has(n));
    if (name !== undefined) files.push({ name, size: sizes.get(name)!, frame: f });
  }
  const sequence = { files };
  const check = checkSequence(sequence, expected);
  if (check.missing.length > 0) {
    print(
      `Warning: ${check.missing.length} frames missing: ${formatFrameList(check.missing).slice(0, 500)}`,
    );
  }
  if (check.empty.length > 0) {
    print(
      `Warning: ${check.empty.length} frames empty: ${formatFrameList(check.empty).slice(0, 500)}`,
    );
  }
  const present = files.filter((m) => m.size > 0);
  if (present.length === 0) {
    throw new Error(
      `no rendered frame from ${settings.firstFrame} to ${settings.lastFrame} (${join(settings.inputDirectory, settings.inputPattern)})`,
    );
  }
  const middle = settings.firstFrame + Math.floor((settings.lastFrame - settings.firstFrame) / 2);
  const thumbFrame = present.reduce(
    (best, m) => (Math.abs(m.frame - middle) < Math.abs(best - middle) ? m.frame : best),
    settings.firstFrame,
  );

  await mkdir(settings.outputDirectory, { recursive: true });
  const outputs = reviewOutputs(settings);
  const total = settings.lastFrame - settings.firstFrame + 1;
  const kinds: MovieKind[] = settings.webm ? ['mp4', 'webm'] : ['mp4'];
  // Progress: 5% for the thumbnail, the rest shared by the movies.
  const share = 95 / kinds.length;
  let lastPrinted = -1;
  const progress = (percent: number) => {
    const p = Math.min(100, Math.floor(percent));
    if (p !== lastPrinted) print(`Progress: ${(lastPrinted = p)}%`);
  };

  const temp = await mkdtemp(join(tmpdir(), 'drover-review-'));
  try {
    const burnIn = await prepareBurnIn(settings, options, temp);

    const holes = check.missing.length > 0 || check.empty.length > 0;
    // image2 cannot start at a negative file number either: links number from 0.
    const source =
      holes || settings.firstFrame < 0
        ? await linkFrames(settings, present, join(temp, 'frames'), pattern.tail)
        : frameSource(settings);
    if (holes) print('Missing and empty frames show the frame before them in the movies');

    print(`Making the thumbnail from frame ${thumbFrame}`);
    const partialThumb = outputs.partial(outputs.thumbnail);
    await runFfmpeg(
      options.ffmpeg,
      thumbnailArgs(settings, thumbFrame, partialThumb, source),
      outputs.thumbnail,
      print,
      () => undefined,
    );
    await rename(partialThumb, outputs.thumbnail);
    progress(5);

    let frames = 0;
    for (const [i, kind] of kinds.entries()) {
      const output = kind === 'mp4' ? outputs.mp4 : outputs.webm!;
      print(`Making ${output} (${total} frames at ${settings.fps} fps)`);
      const partial = outputs.partial(output);
      frames = await runFfmpeg(
        options.ffmpeg,
        movieArgs(settings, kind, partial, burnIn, source),
        output,
        print,
        (n) => progress(5 + share * i + (share * Math.min(n, total)) / total),
      );
      await rename(partial, output);
    }
    progress(100);
    return {
      thumbnail: outputs.thumbnail,
      mp4: outputs.mp4,
      webm: outputs.webm ?? null,
      frames,
      missing: check.missing,
      empty: check.empty,
      burnIn: burnIn !== undefined,
    };
  } finally {
    await rm(temp, { recursive: true, force: true });
    for (const path of [outputs.thumbnail, outputs.mp4, outputs.webm]) {
      if (path) await rm(outputs.partial(path), { force: true });
    }
  }
}

/**
 * A sequence with holes, as ffmpeg can read it: image2 stops at the first missing file, so
 * a folder of links numbered 0…N-1, one per frame from first to last, each to that frame's
 * file or, for a missing or empty frame, to the nearest rendered frame before it (the first
 * rendered one for leading holes). The burn-in's frame number stays the real one.
 */
async function linkFrames(
  settings: ReviewSettings,
  present: readonly { frame: number; name: string }[],
  dir: string,
  tail: string,
): Promise<FrameSource> {
  await mkdir(dir);
  const frameDir = join(settings.inputDirectory, dirname(settings.inputPattern));
  const ext = /\.[A-Za-z0-9]{1,16}$/.exec(tail)?.[0] ?? '';
  const byFrame = new Map(present.map((m) => [m.frame, m.name]));
  let last = byFrame.get(settings.firstFrame) ?? present[0]!.name;
  for (let f = settings.firstFrame; f <= settings.lastFrame; f++) {
    last = byFrame.get(f) ?? last;
    const index = String(f - settings.firstFrame).padStart(6, '0');
    await symlink(join(frameDir, last), join(dir, `f${index}${ext}`));
  }
  return { path: join(dir, `f%06d${ext}`), start: 0 };
}

/** The burn-in's font and text file, or undefined (with a warning) when it cannot be made. */
async function prepareBurnIn(
  settings: ReviewSettings,
  options: ReviewRunOptions,
  temp: string,
): Promise<BurnIn | undefined> {
  if (!settings.burnIn) return undefined;
  if (!(await readable(options.fontFile))) {
    print(
      options,
      `Warning: no burn-in: the font ${options.fontFile} cannot be read (install fonts-dejavu-core)`,
    );
    return undefined;
  }
  const textFile = join(temp, 'burn-in.txt');
  if (!isFilterSafePath(options.fontFile) || !isFilterSafePath(textFile)) {
    print(
      options,
      `Warning: no burn-in: the font or temporary folder path has characters ffmpeg's filters would misread`,
    );
    return undefined;
  }
  const version = settings.version > 0 ? `v${String(settings.version).padStart(3, '0')}` : '';
  // One line: control characters (a newline would start a second line) become spaces.
  const line = [settings.product, version]
    .filter((s) => s.length > 0)
    .join('  ')
    .replace(/\p{Cc}/gu, ' ');
  await writeFile(textFile, line || ' ');
  return { fontFile: options.fontFile, textFile };
}

function print(options: ReviewRunOptions, line: string): void {
  options.print(line);
}
