import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { builtinRenderScenes, type BuiltinRenderScene } from '../../../core/app-settings.js';
import { DroverError } from '../../../core/errors.js';
import { parseFrameList } from '../../../core/frames.js';
import { framePath, writePng } from './png-output.js';
import { renderFrame } from './render.js';

/**
 * The built-in renderer's command line (run by `main.ts` as its own process, the way a DCC
 * would be):
 *
 *   main.js --frames 1,2,3 --output /out/frame_####.png
 *           [--width 320] [--height 180] [--samples 1] [--scene spheres] [--frame-delay-ms 0]
 *
 * `--frames` takes a frame list (`1,2,3`, `1-10`); write negative frames as `--frames=-5,-4`.
 * Prints `Rendering frame 12 (3/4)`, `Saved: /out/frame_0012.png` and `Progress: 75%`
 * per frame; on bad arguments or a failed write it prints `Error: …` to stderr and exits
 * non-zero (2 for usage, 1 for rendering/writing).
 */
export interface RenderCommandOptions {
  frames: number[];
  width: number;
  height: number;
  samples: number;
  scene: BuiltinRenderScene;
  /** Absolute file pattern; `#` runs become the padded frame number. */
  output: string;
  frameDelayMs: number;
}

export interface CommandIo {
  out(line: string): void;
  err(line: string): void;
}

export const USAGE_EXIT = 2;
export const FAILURE_EXIT = 1;

class UsageError extends Error {}

/** Reads the command line; throws a usage error saying which argument is wrong. */
export function parseRenderArgs(args: string[]): RenderCommandOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        frames: { type: 'string' },
        width: { type: 'string', default: '320' },
        height: { type: 'string', default: '180' },
        samples: { type: 'string', default: '1' },
        scene: { type: 'string', default: 'spheres' },
        output: { type: 'string' },
        'frame-delay-ms': { type: 'string', default: '0' },
      },
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if (values.frames === undefined) throw new UsageError('--frames is required (e.g. 1,2,3)');
  if (values.output === undefined) {
    throw new UsageError('--output is required (e.g. /renders/shot/frame_####.png)');
  }
  let frames: number[];
  try {
    frames = parseFrameList(values.frames, '--frames');
  } catch (err) {
    if (err instanceof DroverError) throw new UsageError(err.message);
    throw err;
  }
  const scene = values.scene;
  if (!isScene(scene)) {
    throw new UsageError(
      `--scene must be one of ${builtinRenderScenes.join(', ')}, not "${scene}"`,
    );
  }
  const output = resolve(values.output);
  if (frames.length > 1 && !output.includes('#')) {
    throw new UsageError(
      '--output needs # padding for the frame number when rendering several frames',
    );
  }
  return {
    frames,
    width: intArg('--width', values.width, 16, 4096),
    height: intArg('--height', values.height, 16, 4096),
    samples: intArg('--samples', values.samples, 1, 64),
    scene,
    output,
    frameDelayMs: intArg('--frame-delay-ms', values['frame-delay-ms'], 0, 60_000),
  };
}

function isScene(name: string): name is BuiltinRenderScene {
  return (builtinRenderScenes as readonly string[]).includes(name);
}

function intArg(name: string, text: string, min: number, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${name} must be a whole number from ${min} to ${max}, not "${text}"`);
  }
  return n;
}

/** Runs the command; returns the exit code. Never throws. */
export async function runRenderCommand(args: string[], io: CommandIo): Promise<number> {
  let options: RenderCommandOptions;
  try {
    options = parseRenderArgs(args);
  } catch (err) {
    io.err(`Error: ${err instanceof Error ? err.message : String(err)}`);
    io.err(
      'Usage: main.js --frames 1,2,3 --output DIR/frame_####.png [--width 320] [--height 180] ' +
        `[--samples 1] [--scene ${builtinRenderScenes.join('|')}] [--frame-delay-ms 0]`,
    );
    return USAGE_EXIT;
  }
  const { frames, width, height, samples, scene, output, frameDelayMs } = options;
  for (const [i, frame] of frames.entries()) {
    io.out(`Rendering frame ${frame} (${i + 1}/${frames.length})`);
    const path = framePath(output, frame);
    try {
      const rgba = renderFrame({ scene, frame, width, height, samples });
      if (frameDelayMs > 0) await new Promise((r) => setTimeout(r, frameDelayMs));
      await writePng(path, rgba, width, height);
    } catch (err) {
      io.err(
        `Error: frame ${frame} could not be written to ${path}: ${err instanceof Error ? err.message : String(err)}`,
      );
      return FAILURE_EXIT;
    }
    io.out(`Saved: ${path}`);
    io.out(`Progress: ${Math.round(((i + 1) / frames.length) * 100)}%`);
  }
  return 0;
}
