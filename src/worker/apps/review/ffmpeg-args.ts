import { join } from 'node:path';
import { type ReviewSettings, reviewOutputFiles } from '../../../core/app-settings.js';
import { formatSequencePattern, parseSequencePattern } from '../../../core/sequences.js';

/**
 * ffmpeg command lines for review media, as argument arrays (ffmpeg is spawned without a
 * shell). Pure, so the exact arguments are unit-tested; `run-review.ts` runs them.
 *
 * Choices (see the publishing reference): `-start_number` because image2 only looks for the
 * first file within 5 of its start (a sequence from 1001 is not found without it);
 * `-pix_fmt yuv420p` because players (browsers, QuickTime) refuse 4:4:4 H.264; even
 * dimensions because yuv420p subsamples chroma 2×2 and libx264 refuses odd sizes;
 * `+faststart` so the browser plays before the whole file has arrived. Every file name is
 * given as `file:` so a name like `http:x` is never read as a protocol.
 */

/** Debian's fonts-dejavu-core font used for burn-ins. */
export const DEFAULT_FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';

/** The common options: overwrite, no stdin, quiet log, machine-readable progress on stdout. */
const COMMON = [
  '-hide_banner',
  '-nostdin',
  '-y',
  '-loglevel',
  'error',
  '-progress',
  'pipe:1',
  '-nostats',
];

/** The frames' path as ffmpeg's image2 reads it: printf `%04d`, a literal `%` doubled. */
export function ffmpegInputPattern(
  settings: Pick<ReviewSettings, 'inputDirectory' | 'inputPattern'>,
): string {
  const pattern = parseSequencePattern(settings.inputPattern, 'pluginInfo.inputPattern');
  const escaped = {
    ...pattern,
    head: pattern.head.replaceAll('%', '%%'),
    tail: pattern.tail.replaceAll('%', '%%'),
  };
  return join(settings.inputDirectory, formatSequencePattern(escaped, 'printf'));
}

/** Scale down to at most `maxWidth`, keeping the aspect ratio, both sides even. */
export function scaleFilter(maxWidth: number): string {
  // `\,` keeps the comma inside min() from splitting the filter chain.
  return `scale=w=trunc(min(iw\\,${maxWidth})/2)*2:h=-2`;
}

/**
 * A value for a filter option: safe only for the paths we make or check ourselves, which
 * hold no quote, colon, backslash or filter-graph separator (see `isFilterSafePath`).
 */
export function isFilterSafePath(path: string): boolean {
  return /^[A-Za-z0-9_./-]+$/.test(path);
}

/** Burn-in inputs: the font and a text file holding `product  v003` (read with no expansion). */
export interface BurnIn {
  fontFile: string;
  /** Holds the product and version line; a file so no user text is ever parsed by ffmpeg. */
  textFile: string;
}

/** The two drawtext filters: product and version top left, frame number bottom right. */
export function burnInFilters(burnIn: BurnIn, firstFrame: number): string[] {
  if (!isFilterSafePath(burnIn.fontFile) || !isFilterSafePath(burnIn.textFile)) {
    throw new Error('burn-in paths must be plain paths (letters, digits, _ . / -)');
  }
  const box = 'box=1:boxcolor=black@0.5:boxborderw=6:fontcolor=white:fontsize=h/24';
  // `n` counts decoded frames from 0; the frame number is n + the first frame. The colons
  // inside the expression are escaped twice (`\\\:`): the filter-graph parser takes one
  // level, the option parser the other (tried on ffmpeg 5.1: `\:` alone splits the option).
  const offset = `${firstFrame < 0 ? '-' : '+'}${Math.abs(firstFrame)}`;
  const frameExpr = `%{eif\\\\\\:n${offset}\\\\\\:d}`;
  return [
    `drawtext=fontfile=${burnIn.fontFile}:textfile=${burnIn.textFile}:expansion=none:${box}:x=12:y=12`,
    `drawtext=fontfile=${burnIn.fontFile}:text=${frameExpr}:${box}:x=w-tw-12:y=h-th-12`,
  ];
}

/**
 * Where ffmpeg reads the frames: the printf path and the number of `firstFrame` in it. By
 * default the frames themselves; `run-review.ts` passes a folder of links instead when the
 * sequence has holes (see `linkFrames`).
 */
export interface FrameSource {
  path: string;
  /** The file number ffmpeg starts at for `firstFrame`. */
  start: number;
}

export function frameSource(settings: ReviewSettings): FrameSource {
  return { path: ffmpegInputPattern(settings), start: settings.firstFrame };
}

function inputArgs(settings: ReviewSettings, source: FrameSource, offset: number): string[] {
  return [
    '-f',
    'image2',
    '-framerate',
    String(settings.fps),
    '-start_number',
    String(source.start + offset),
    '-i',
    `file:${source.path}`,
  ];
}

/** The thumbnail: one frame (the middle one, chosen by the caller), scaled, as JPEG. */
export function thumbnailArgs(
  settings: ReviewSettings,
  frame: number,
  output: string,
  source: FrameSource = frameSource(settings),
): string[] {
  return [
    ...COMMON,
    ...inputArgs(settings, source, frame - settings.firstFrame),
    '-frames:v',
    '1',
    '-vf',
    `${scaleFilter(settings.thumbnailWidth)},format=yuvj420p`,
    '-q:v',
    '3',
    '-f',
    'image2',
    '-update',
    '1',
    '-c:v',
    'mjpeg',
    `file:${output}`,
  ];
}

export type MovieKind = 'mp4' | 'webm';

/**
 * A movie of every frame from `firstFrame` to `lastFrame` (`-frames:v` stops it there even
 * if later frames exist), with burn-ins when `burnIn` is given.
 */
export function movieArgs(
  settings: ReviewSettings,
  kind: MovieKind,
  output: string,
  burnIn: BurnIn | undefined,
  source: FrameSource = frameSource(settings),
): string[] {
  const count = settings.lastFrame - settings.firstFrame + 1;
  const filters = [scaleFilter(settings.maxWidth)];
  if (burnIn) filters.push(...burnInFilters(burnIn, settings.firstFrame));
  filters.push('format=yuv420p');
  const codec =
    kind === 'mp4'
      ? [
          '-c:v',
          'libx264',
          '-preset',
          'veryfast',
          '-crf',
          '18',
          '-movflags',
          '+faststart',
          '-f',
          'mp4',
        ]
      : // Constant quality (`-b:v 0 -crf`), realtime speed: review media, not a master.
        [
          '-c:v',
          'libvpx-vp9',
          '-b:v',
          '0',
          '-crf',
          '34',
          '-deadline',
          'realtime',
          '-cpu-used',
          '8',
          '-row-mt',
          '1',
          '-f',
          'webm',
        ];
  return [
    ...COMMON,
    ...inputArgs(settings, source, 0),
    '-frames:v',
    String(count),
    '-vf',
    filters.join(','),
    '-pix_fmt',
    'yuv420p',
    '-an',
    ...codec,
    `file:${output}`,
  ];
}

/** The output files (see `reviewOutputFiles`) and the temporary names they are written as. */
export function reviewOutputs(settings: ReviewSettings) {
  const files = reviewOutputFiles(settings);
  return { ...files, partial: (path: string) => `${path}.partial` };
}
