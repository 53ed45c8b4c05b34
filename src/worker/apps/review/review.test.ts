import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ReviewPluginInfo,
  parseAppSettings,
  reviewOutputFiles,
  reviewSettingsSchema,
  validatePluginInfo,
} from '../../../core/app-settings.js';
import { taskFixture } from '../task-fixture.js';
import { findApp } from '../index.js';
import {
  DEFAULT_FONT,
  burnInFilters,
  ffmpegInputPattern,
  movieArgs,
  scaleFilter,
  thumbnailArgs,
} from './ffmpeg-args.js';
import { REVIEW_RESULT_PREFIX, type ReviewResult, reviewApp, reviewScript } from './index.js';
import { runReview } from './run-review.js';

const run = promisify(execFile);
/** Debian's ffmpeg (`.ci/run` installs it); the media tests need the real thing. */
const FFMPEG = '/usr/bin/ffmpeg';
const FFPROBE = '/usr/bin/ffprobe';
const hasFfmpeg = existsSync(FFMPEG) && existsSync(FFPROBE);

function settings(overrides: Partial<ReviewPluginInfo> = {}) {
  return parseAppSettings(reviewSettingsSchema, {
    inputDirectory: '/renders/v001',
    inputPattern: 'beauty.####.png',
    firstFrame: 1001,
    lastFrame: 1024,
    outputDirectory: '/renders/v001/review',
    product: 'demo/seq010/sh010/beauty',
    version: 1,
    ...overrides,
  });
}

describe('review settings', () => {
  it('applies defaults and is the built-in plugin "review"', () => {
    const s = settings();
    expect(s).toMatchObject({
      fps: 24,
      outputName: 'review',
      maxWidth: 1920,
      burnIn: true,
      webm: true,
    });
    expect(findApp('review')).toBe(reviewApp);
    expect(validatePluginInfo('review', { ...s })).toEqual(s);
    expect(reviewOutputFiles(s)).toEqual({
      thumbnail: '/renders/v001/review/review.jpg',
      mp4: '/renders/v001/review/review.mp4',
      webm: '/renders/v001/review/review.webm',
    });
    expect(reviewOutputFiles({ ...s, outputDirectory: '/out/', webm: false }).webm).toBeUndefined();
  });

  it.each<[Partial<ReviewPluginInfo> & Record<string, unknown>, string, RegExp]>([
    [{ inputDirectory: 'relative/dir' }, 'pluginInfo.inputDirectory', /absolute path/],
    [{ outputDirectory: '/a/../b' }, 'pluginInfo.outputDirectory', /./],
    [{ inputPattern: '/etc/beauty.####.png' }, 'pluginInfo.inputPattern', /relative/],
    [{ inputPattern: '../x/beauty.####.png' }, 'pluginInfo.inputPattern', /\.\./],
    [{ inputPattern: 'beauty.png' }, 'pluginInfo.inputPattern', /no frame placeholder/],
    [{ lastFrame: 1000 }, 'pluginInfo.lastFrame', /before firstFrame/],
    [{ firstFrame: 1, lastFrame: 60_000 }, 'pluginInfo.lastFrame', /at most 50000 frames/],
    [{ fps: 0 }, 'pluginInfo.fps', /at least 1/],
    [{ outputName: '../x' }, 'pluginInfo.outputName', /letters, digits/],
    [{ product: 'x'.repeat(300) }, 'pluginInfo.product', /at most 256/],
    [{ shell: 'rm -rf /' }, 'pluginInfo.shell', /not a setting/],
  ])('refuses %j naming %s', (override, field, message) => {
    let caught: unknown;
    try {
      settings(override);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'invalid_input', field });
    expect((caught as Error).message).toMatch(message);
  });
});

describe('ffmpeg arguments', () => {
  it('reads the sequence from its first frame with -start_number and makes yuv420p H.264', () => {
    const s = settings();
    const argv = movieArgs(s, 'mp4', '/out/review.mp4.partial', undefined);
    const after = (flag: string) => argv[argv.indexOf(flag) + 1];
    expect(after('-start_number')).toBe('1001');
    expect(after('-framerate')).toBe('24');
    expect(after('-frames:v')).toBe('24');
    expect(after('-i')).toBe('file:/renders/v001/beauty.%04d.png');
    expect(after('-c:v')).toBe('libx264');
    expect(after('-pix_fmt')).toBe('yuv420p');
    expect(after('-movflags')).toBe('+faststart');
    expect(argv.at(-1)).toBe('file:/out/review.mp4.partial');
    expect(movieArgs(s, 'webm', '/o.webm', undefined)).toContain('libvpx-vp9');
  });

  it('doubles a literal % in the frames path and keeps hashes as the frame number', () => {
    expect(
      ffmpegInputPattern({ inputDirectory: '/r/100%', inputPattern: 'sub/b_100%.@@@.exr' }),
    ).toBe('/r/100%/sub/b_100%%.%03d.exr');
  });

  it('keeps movies even-sized and the thumbnail on the frame asked for', () => {
    expect(scaleFilter(1920)).toBe('scale=w=trunc(min(iw\\,1920)/2)*2:h=-2');
    const argv = thumbnailArgs(settings(), 1012, '/o/review.jpg.partial');
    expect(argv[argv.indexOf('-start_number') + 1]).toBe('1012');
    expect(argv[argv.indexOf('-frames:v') + 1]).toBe('1');
  });

  it('refuses burn-in paths the filter graph would misread', () => {
    expect(() => burnInFilters({ fontFile: "/f:o'nt.ttf", textFile: '/t.txt' }, 1)).toThrow(
      /plain paths/,
    );
    const [, frame] = burnInFilters({ fontFile: '/f.ttf', textFile: '/t.txt' }, -5);
    expect(frame).toContain('n-5');
  });

  it('the app runs the review script with the parsed settings as one argument, no shell', () => {
    const specs = reviewApp.processes(
      taskFixture({ plugin: 'review', pluginInfo: { ...settings() } }),
    );
    expect(specs).toEqual([{ argv: [process.execPath, reviewScript, JSON.stringify(settings())] }]);
    expect(reviewScript).toMatch(/review[\\/]main\.js$/);
  });

  it('reads progress, errors and status from the script output', () => {
    const parser = reviewApp.createParser(taskFixture());
    expect(parser.line('Progress: 42%', 'stdout')).toEqual({ progress: 42 });
    expect(parser.line('Error: ffmpeg failed making x', 'stdout')).toEqual({
      error: 'ffmpeg failed making x',
    });
    expect(parser.line('frame=12', 'stdout')).toBeUndefined();
  });
});

interface Probe {
  codec: string;
  width: number;
  height: number;
  frames: number;
  pixFmt: string;
}

async function probe(path: string): Promise<Probe> {
  const { stdout } = await run(FFPROBE, [
    '-v',
    'error',
    '-count_frames',
    '-select_streams',
    'v:0',
    '-show_entries',
    'stream=codec_name,width,height,nb_read_frames,pix_fmt',
    '-of',
    'json',
    path,
  ]);
  const stream = (JSON.parse(stdout) as { streams: Record<string, string | number>[] }).streams[0]!;
  return {
    codec: String(stream.codec_name),
    width: Number(stream.width),
    height: Number(stream.height),
    frames: Number(stream.nb_read_frames),
    pixFmt: String(stream.pix_fmt),
  };
}

/** Writes PNG frames of an odd size (so even-sizing is exercised), each a different grey. */
async function writeFrames(dir: string, frames: number[], name = (f: number) => `beauty.${f}.png`) {
  await mkdir(dir, { recursive: true });
  for (const [i, f] of frames.entries()) {
    const png = new PNG({ width: 65, height: 37 });
    png.data.fill(40 + ((i * 7) % 200));
    await writeFile(join(dir, name(f)), PNG.sync.write(png));
  }
}

describe.skipIf(!hasFfmpeg)('runReview with real ffmpeg', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'drover-review-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function review(over: Partial<ReviewPluginInfo>) {
    const lines: string[] = [];
    const s = settings({
      inputDirectory: join(root, 'in'),
      outputDirectory: join(root, 'out'),
      ...over,
    });
    const code = await runReview(s, {
      ffmpeg: FFMPEG,
      fontFile: DEFAULT_FONT,
      print: (l) => lines.push(l),
    });
    const resultLine = lines.find((l) => l.startsWith(REVIEW_RESULT_PREFIX));
    const result = resultLine
      ? (JSON.parse(resultLine.slice(REVIEW_RESULT_PREFIX.length)) as ReviewResult)
      : undefined;
    return { code, lines, result, settings: s };
  }

  it('makes a thumbnail, an H.264 MP4 and a VP9 WebM of a sequence starting at 1001', async () => {
    const frames = Array.from({ length: 24 }, (_, i) => 1001 + i);
    await writeFrames(join(root, 'in'), frames);
    const { code, lines, result } = await review({ maxWidth: 1920 });
    expect(code, lines.join('\n')).toBe(0);
    expect(result).toMatchObject({
      frames: 24,
      missing: [],
      empty: [],
      burnIn: existsSync(DEFAULT_FONT),
    });
    const mp4 = await probe(result!.mp4);
    expect(mp4).toEqual({ codec: 'h264', width: 64, height: 36, frames: 24, pixFmt: 'yuv420p' });
    const webm = await probe(result!.webm!);
    expect(webm).toMatchObject({ codec: 'vp9', width: 64, height: 36, frames: 24 });
    const thumb = await probe(result!.thumbnail);
    expect(thumb).toMatchObject({ codec: 'mjpeg', frames: 1 });
    // Progress climbs to 100 and no partial file is left behind.
    const progress = lines
      .filter((l) => l.startsWith('Progress:'))
      .map((l) => Number(/\d+/.exec(l)![0]));
    expect(progress.at(-1)).toBe(100);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
    expect((await readdir(join(root, 'out'))).sort()).toEqual([
      'review.jpg',
      'review.mp4',
      'review.webm',
    ]);
    // faststart: the index (moov) comes before the media data (mdat).
    const head = (await import('node:fs/promises')).readFile(result!.mp4);
    const bytes = await head;
    expect(bytes.indexOf('moov')).toBeLessThan(bytes.indexOf('mdat'));
  });

  /** Each movie frame's mean grey level (the movie decoded by ffmpeg to 8-bit grey). */
  async function meanGreys(movie: string, width: number, height: number): Promise<number[]> {
    const { stdout } = await run(
      FFMPEG,
      ['-v', 'error', '-i', movie, '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'],
      { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
    );
    const size = width * height;
    const means: number[] = [];
    for (let o = 0; o + size <= stdout.length; o += size) {
      let sum = 0;
      for (let i = o; i < o + size; i++) sum += stdout[i]!;
      means.push(Math.round(sum / size));
    }
    return means;
  }

  it('holds the frame before a missing or empty one, so the movie has every frame', async () => {
    const dir = join(root, 'gappy');
    // Frames 1-4 and 6 with greys 40, 47, 54, 61, 68; 5 and 8 missing, 7 empty.
    await writeFrames(dir, [1, 2, 3, 4, 6], (f) => `b.${String(f).padStart(4, '0')}.png`);
    await writeFile(join(dir, 'b.0007.png'), '');
    const { code, lines, result } = await review({
      inputDirectory: dir,
      inputPattern: 'b.%04d.png',
      firstFrame: 1,
      lastFrame: 8,
      outputDirectory: join(root, 'gappy-out'),
      webm: false,
      burnIn: false,
    });
    expect(code, lines.join('\n')).toBe(0);
    expect(lines).toContain('Warning: 2 frames missing: 5,8');
    expect(lines).toContain('Warning: 1 frames empty: 7');
    expect(result).toMatchObject({ frames: 8, missing: [5, 8], empty: [7], webm: null });
    const mp4 = await probe(result!.mp4);
    expect(mp4.frames).toBe(8);
    const greys = await meanGreys(result!.mp4, mp4.width, mp4.height);
    const expected = [40, 47, 54, 61, 61, 68, 68, 68];
    expect(greys).toHaveLength(8);
    greys.forEach((g, i) =>
      expect(Math.abs(g - expected[i]!), `frame ${i + 1}: ${g}`).toBeLessThanOrEqual(3),
    );
  });

  it('starts with the first rendered frame when the first frames are missing', async () => {
    const { code, lines, result } = await review({
      firstFrame: 995,
      lastFrame: 1004,
      outputDirectory: join(root, 'lead'),
      webm: false,
    });
    expect(code, lines.join('\n')).toBe(0);
    expect(result).toMatchObject({ frames: 10, missing: [995, 996, 997, 998, 999, 1000] });
    expect((await probe(result!.mp4)).frames).toBe(10);
  });

  it('reads negative frames written with the sign before the padding (builtin-render)', async () => {
    const dir = join(root, 'negative-outside');
    await writeFrames(
      dir,
      [-2, -1, 0, 1],
      (f) => `m_${f < 0 ? '-' : ''}${String(Math.abs(f)).padStart(4, '0')}.png`,
    );
    const { code, lines, result } = await review({
      inputDirectory: dir,
      inputPattern: 'm_%04d.png',
      firstFrame: -2,
      lastFrame: 1,
      outputDirectory: join(root, 'negative-outside-out'),
      webm: false,
    });
    expect(code, lines.join('\n')).toBe(0);
    expect(result).toMatchObject({ frames: 4, missing: [], empty: [] });
    expect((await probe(result!.mp4)).frames).toBe(4);
  });

  it('reads negative frames (printf width includes the sign)', async () => {
    const dir = join(root, 'negative');
    await writeFrames(
      dir,
      [-2, -1, 0, 1],
      (f) => `n.${f < 0 ? '-' + String(-f).padStart(3, '0') : String(f).padStart(4, '0')}.png`,
    );
    const { code, lines, result } = await review({
      inputDirectory: dir,
      inputPattern: 'n.####.png',
      firstFrame: -2,
      lastFrame: 1,
      outputDirectory: join(root, 'negative-out'),
      webm: false,
    });
    expect(code, lines.join('\n')).toBe(0);
    expect(result).toMatchObject({ frames: 4, missing: [], empty: [] });
    expect((await probe(result!.mp4)).frames).toBe(4);
  });

  it('fails naming the frames when none was rendered, leaving no output', async () => {
    const { code, lines } = await review({
      firstFrame: 1,
      lastFrame: 5,
      outputDirectory: join(root, 'none'),
    });
    expect(code).toBe(1);
    expect(lines.at(-1)).toMatch(/^Error: no rendered frame from 1 to 5 \(.*beauty\.####\.png\)$/);
    expect(existsSync(join(root, 'none', 'review.mp4'))).toBe(false);
  });

  it('goes without burn-in, saying so, when the font is missing', async () => {
    const lines: string[] = [];
    const s = settings({
      inputDirectory: join(root, 'in'),
      outputDirectory: join(root, 'nofont'),
      lastFrame: 1004,
      webm: false,
    });
    const code = await runReview(s, {
      ffmpeg: FFMPEG,
      fontFile: join(root, 'no-such-font.ttf'),
      print: (l) => lines.push(l),
    });
    expect(code, lines.join('\n')).toBe(0);
    expect(lines.some((l) => /^Warning: no burn-in: the font .* cannot be read/.test(l))).toBe(
      true,
    );
    expect((await probe(join(root, 'nofont', 'review.mp4'))).frames).toBe(4);
  });

  it('reports an ffmpeg that cannot run as an error', async () => {
    const lines: string[] = [];
    const code = await runReview(
      settings({ inputDirectory: join(root, 'in'), outputDirectory: join(root, 'x') }),
      {
        ffmpeg: join(root, 'no-ffmpeg'),
        fontFile: DEFAULT_FONT,
        print: (l) => lines.push(l),
      },
    );
    expect(code).toBe(1);
    expect(lines.at(-1)).toMatch(/^Error: cannot run ffmpeg/);
  });

  it('the burned-in movie differs from the clean one (the text is drawn)', async () => {
    if (!existsSync(DEFAULT_FONT)) return;
    const a = await review({ outputDirectory: join(root, 'burn'), lastFrame: 1002, webm: false });
    const b = await review({
      outputDirectory: join(root, 'clean'),
      lastFrame: 1002,
      webm: false,
      burnIn: false,
    });
    expect(a.result?.burnIn).toBe(true);
    expect(b.result?.burnIn).toBe(false);
    // Decode a frame of each to raw pixels and compare.
    const frameOf = async (path: string) =>
      (
        await run(
          FFMPEG,
          [
            '-v',
            'error',
            '-i',
            path,
            '-frames:v',
            '1',
            '-f',
            'rawvideo',
            '-pix_fmt',
            'gray',
            'pipe:1',
          ],
          { encoding: 'buffer' },
        )
      ).stdout;
    const [pa, pb] = await Promise.all([frameOf(a.result!.mp4), frameOf(b.result!.mp4)]);
    expect(pa.length).toBe(pb.length);
    expect(pa.equals(pb)).toBe(false);
    expect((await stat(a.result!.thumbnail)).size).toBeGreaterThan(0);
  });
});
