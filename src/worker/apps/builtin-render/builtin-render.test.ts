import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtinRenderScenes } from '../../../core/app-settings.js';
import type { TaskAssignment } from '../../../core/types.js';
import { taskFixture } from '../task-fixture.js';
import { builtinRenderApp, builtinRenderScript } from './index.js';
import { framePath, writePng } from './png-output.js';
import { parseRenderArgs, runRenderCommand } from './render-command.js';
import { renderFrame } from './render.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drover-builtin-render-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function distinctColours(rgba: Buffer): number {
  const colours = new Set<number>();
  for (let i = 0; i < rgba.length; i += 4) colours.add(rgba.readUInt32BE(i));
  return colours.size;
}

async function readPng(path: string): Promise<PNG> {
  return PNG.sync.read(await readFile(path));
}

function task(overrides: Partial<TaskAssignment> = {}): TaskAssignment {
  return taskFixture({
    frames: [1, 2, 3],
    plugin: 'builtin-render',
    outputDirectories: ['/renders/shot010'],
    ...overrides,
  });
}

describe('renderFrame', () => {
  it.each(builtinRenderScenes)('draws a picture, not one colour (%s)', (scene) => {
    const rgba = renderFrame({ scene, frame: 12, width: 64, height: 36, samples: 1 });
    expect(rgba.length).toBe(64 * 36 * 4);
    expect(distinctColours(rgba)).toBeGreaterThan(20);
    for (let i = 3; i < rgba.length; i += 4) expect(rgba[i]).toBe(255);
  });

  it.each(builtinRenderScenes)('animates: frames differ, and a frame is reproducible (%s)', (s) => {
    const a = renderFrame({ scene: s, frame: 1, width: 48, height: 27, samples: 2 });
    const b = renderFrame({ scene: s, frame: 20, width: 48, height: 27, samples: 2 });
    const again = renderFrame({ scene: s, frame: 1, width: 48, height: 27, samples: 2 });
    expect(a.equals(b)).toBe(false);
    expect(a.equals(again)).toBe(true);
  });

  it('antialiases with more samples', () => {
    const one = renderFrame({ scene: 'spheres', frame: 5, width: 64, height: 36, samples: 1 });
    const many = renderFrame({ scene: 'spheres', frame: 5, width: 64, height: 36, samples: 8 });
    expect(many.equals(one)).toBe(false);
    // Averaged edges add in-between colours.
    expect(distinctColours(many)).toBeGreaterThan(distinctColours(one));
  });
});

describe('framePath', () => {
  it.each<[string, number, string]>([
    ['/out/frame_####.png', 12, '/out/frame_0012.png'],
    ['/out/f_#.png', 123, '/out/f_123.png'],
    ['/out/f_####.png', -5, '/out/f_-0005.png'],
    ['/out/##/f_###.png', 7, '/out/07/f_007.png'],
  ])('%s with frame %d is %s', (pattern, frame, path) => {
    expect(framePath(pattern, frame)).toBe(path);
  });
});

describe('writePng', () => {
  it('writes a PNG that decodes to the same size and pixels, creating folders', async () => {
    const rgba = renderFrame({ scene: 'mandelbrot', frame: 3, width: 40, height: 24, samples: 1 });
    const path = join(dir, 'a', 'b', 'frame_0003.png');
    await writePng(path, rgba, 40, 24);
    const png = await readPng(path);
    expect([png.width, png.height]).toEqual([40, 24]);
    expect(png.data.equals(rgba)).toBe(true);
    // No temporary file is left behind.
    expect(await readdir(join(dir, 'a', 'b'))).toEqual(['frame_0003.png']);
  });

  it('fails when the folder cannot be created, leaving nothing behind', async () => {
    await writeFile(join(dir, 'file'), 'x');
    const rgba = Buffer.alloc(16 * 16 * 4);
    await expect(writePng(join(dir, 'file', 'f.png'), rgba, 16, 16)).rejects.toThrow();
  });

  it('refuses a buffer of the wrong size', async () => {
    await expect(writePng(join(dir, 'f.png'), Buffer.alloc(10), 16, 16)).rejects.toThrow(
      /not 16x16/,
    );
  });
});

describe('render command', () => {
  function io() {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) } };
  }

  it('renders each frame to a real PNG and reports progress', async () => {
    const { out, err, io: streams } = io();
    const code = await runRenderCommand(
      [
        '--frames',
        '1,2,3,4',
        '--width',
        '32',
        '--height',
        '20',
        '--samples',
        '2',
        '--scene',
        'mandelbrot',
        '--output',
        join(dir, 'beauty', 'frame_####.png'),
      ],
      streams,
    );
    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(out).toContain('Rendering frame 3 (3/4)');
    expect(out).toContain('Progress: 75%');
    expect(out).toContain(`Saved: ${join(dir, 'beauty', 'frame_0003.png')}`);
    expect(out.at(-1)).toBe('Progress: 100%');
    const files = (await readdir(join(dir, 'beauty'))).sort();
    expect(files).toEqual(['frame_0001.png', 'frame_0002.png', 'frame_0003.png', 'frame_0004.png']);
    const png = await readPng(join(dir, 'beauty', 'frame_0004.png'));
    expect([png.width, png.height]).toEqual([32, 20]);
    expect(distinctColours(png.data)).toBeGreaterThan(5);
  });

  it('accepts negative frames written as --frames=…', () => {
    const options = parseRenderArgs([`--frames=-2,-1`, `--output=${join(dir, 'f_##.png')}`]);
    expect(options.frames).toEqual([-2, -1]);
    expect(options).toMatchObject({ width: 320, height: 180, samples: 1, scene: 'spheres' });
  });

  it.each<[string[], RegExp]>([
    [['--output', '/tmp/f_#.png'], /--frames is required/],
    [['--frames', '1'], /--output is required/],
    [['--frames', 'abc', '--output', '/tmp/f_#.png'], /"abc" is not a frame/],
    [
      ['--frames', '1', '--output', '/tmp/f_#.png', '--width', '8'],
      /--width must be .* 16 to 4096/,
    ],
    [['--frames', '1', '--output', '/tmp/f_#.png', '--samples', 'x'], /--samples must be/],
    [['--frames', '1', '--output', '/tmp/f_#.png', '--scene', 'teapot'], /--scene must be one of/],
    [['--frames', '1,2', '--output', '/tmp/f.png'], /needs # padding/],
    [['--frames', '1', '--output', '/tmp/f_#.png', '--bogus'], /bogus/],
  ])('exits 2 with a clear message for %j', async (args, message) => {
    const { out, err, io: streams } = io();
    expect(await runRenderCommand(args, streams)).toBe(2);
    expect(out).toEqual([]);
    expect(err[0]).toMatch(/^Error: /);
    expect(err[0]).toMatch(message);
  });

  it('exits 1 with an Error: line when a frame cannot be written', async () => {
    await writeFile(join(dir, 'blocker'), 'x');
    const { err, io: streams } = io();
    const code = await runRenderCommand(
      [
        '--frames',
        '1',
        '--width',
        '16',
        '--height',
        '16',
        '--output',
        join(dir, 'blocker', 'f_#.png'),
      ],
      streams,
    );
    expect(code).toBe(1);
    expect(err[0]).toMatch(/^Error: frame 1 could not be written to .*blocker/);
  });
});

describe('builtin-render plugin', () => {
  it('runs the renderer script with the same Node, writing into the first output directory', () => {
    const specs = builtinRenderApp.processes(
      task({
        frames: [-1, 0, 1],
        outputDirectories: ['/renders/shot010', '/renders/other'],
        pluginInfo: { width: 64, height: 32, samples: 4, scene: 'mandelbrot', frameDelayMs: 50 },
      }),
    );
    expect(specs).toEqual([
      {
        argv: [
          process.execPath,
          builtinRenderScript,
          '--frames=-1,0,1',
          '--width=64',
          '--height=32',
          '--samples=4',
          '--scene=mandelbrot',
          `--output=${join('/renders/shot010', 'frame_####.png')}`,
          '--frame-delay-ms=50',
        ],
      },
    ]);
    expect(builtinRenderScript).toMatch(/builtin-render[\\/]main\.js$/);
  });

  it('the argv it builds is read back by the script', () => {
    const [spec] = builtinRenderApp.processes(
      task({ frames: [4, 5], pluginInfo: { outputPattern: 'beauty/b_###.png' } }),
    );
    const options = parseRenderArgs(spec!.argv.slice(2));
    expect(options.frames).toEqual([4, 5]);
    expect(options.output).toBe(join('/renders/shot010', 'beauty', 'b_###.png'));
  });

  it('fails clearly when the job has no output directory', () => {
    expect(() => builtinRenderApp.processes(task({ outputDirectories: [] }))).toThrow(
      expect.objectContaining({ code: 'invalid_input', field: 'outputDirectories' }),
    );
  });

  it('refuses bad settings naming the setting', () => {
    expect(() => builtinRenderApp.processes(task({ pluginInfo: { width: 99999 } }))).toThrow(
      /^pluginInfo\.width: must be at most 4096/,
    );
  });

  it('reads progress, status and error lines', () => {
    const parser = builtinRenderApp.createParser(task());
    expect(parser.line('Rendering frame 12 (3/4)', 'stdout')).toEqual({
      status: 'Rendering frame 12 (3/4)',
    });
    expect(parser.line('Progress: 75%', 'stdout')).toEqual({ progress: 75 });
    expect(parser.line('Error: frame 1 could not be written', 'stderr')).toEqual({
      error: 'frame 1 could not be written',
    });
    expect(parser.line('Saved: /out/frame_0001.png', 'stdout')).toBeUndefined();
  });
});
