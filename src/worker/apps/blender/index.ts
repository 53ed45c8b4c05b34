import { blenderSettingsSchema, parseAppSettings } from '../../../core/app-settings.js';
import { invalid } from '../../../core/errors.js';
import type { TaskAssignment } from '../../../core/types.js';
import type { AppPlugin, LineInfo, OutputParser, ProcessSpec } from '../types.js';

/**
 * `Blender`: a background render of the task's frames,
 * `blender -b scene.blend [-E engine] [-o path] [-F format] [-t threads] -s 1 -e 10 … -a`.
 * Blender reads its arguments in order, so every setting comes before the `-a`/`-f` that
 * renders. A chunk that is not a contiguous ascending run is rendered with `-f 1,5,9`.
 */
export const blenderApp: AppPlugin = {
  name: 'Blender',

  processes(task: TaskAssignment): ProcessSpec[] {
    const s = parseAppSettings(blenderSettingsSchema, task.pluginInfo);
    // Blender reads `-s -5` / `-f -5` as "5 frames before the scene's end" (relative frames),
    // so a negative frame cannot be asked for on its command line.
    const negative = task.frames.find((f) => f < 0);
    if (negative !== undefined) {
      throw invalid(
        'frames',
        `Blender's command line reads a negative frame (${negative}) as relative to the scene's end; render frames ≥ 0 or offset the scene`,
      );
    }
    if (task.frames.length === 0) throw invalid('frames', 'the task has no frames');
    const argv = [s.executable, '-b', s.sceneFile];
    if (s.engine !== undefined) argv.push('-E', s.engine);
    if (s.outputPath !== undefined) argv.push('-o', s.outputPath);
    if (s.format !== undefined) argv.push('-F', s.format);
    if (s.threads !== undefined) argv.push('-t', String(s.threads));
    const first = task.frames[0]!;
    const last = task.frames.at(-1)!;
    const contiguous = task.frames.every((f, i) => f === first + i);
    if (contiguous) {
      argv.push('-s', String(first), '-e', String(last), ...s.extraArguments, '-a');
    } else {
      argv.push(...s.extraArguments, '-f', task.frames.join(','));
    }
    return [{ argv }];
  },

  createParser(task: TaskAssignment): OutputParser {
    return new BlenderOutputParser(task.frames.length);
  },
};

// Cycles: `… | Sample 40/128`; Eevee: `… | Rendering 40 / 128 samples`; Cycles before 3.0:
// `… | Path Tracing Tile 3/12` or `Rendered 120/510 Tiles`.
const SAMPLE =
  /\|\s*(?:Sample (\d+)\s*\/\s*(\d+)|Rendering (\d+)\s*\/\s*(\d+) samples|Path Tracing Tile (\d+)\s*\/\s*(\d+)|Rendered (\d+)\s*\/\s*(\d+) Tiles)/;
const FRAME = /^Fra:(-?\d+)\s/;
const SAVED = /^Saved:\s*'?(.*?)'?\s*$/;
/**
 * Lines that mean the render failed even if Blender exits 0 (it does when the .blend is
 * missing, then renders its default scene). `Error: Not freed memory blocks` is a harmless
 * leak report some builds print at exit, so it is not one of them.
 */
const ERROR =
  /^(?:Error: (?!Not freed memory blocks)|Traceback \(most recent call last\)|.*: command not found|.*Cannot read file)/;

/** Frames saved so far plus the current frame's sample fraction give the task's progress. */
export class BlenderOutputParser implements OutputParser {
  private framesDone = 0;
  private frame: number | undefined;

  constructor(private readonly frameCount: number) {}

  line(text: string): LineInfo | undefined {
    if (ERROR.test(text)) return { error: text.trim() };
    const saved = SAVED.exec(text);
    if (saved) {
      this.framesDone = Math.min(this.framesDone + 1, this.frameCount);
      return { progress: this.progress(0), status: `Saved ${saved[1] ?? ''}` };
    }
    const fra = FRAME.exec(text);
    if (fra) this.frame = Number(fra[1]);
    const sample = SAMPLE.exec(text);
    if (sample) {
      const nums = sample.slice(1).filter((v) => v !== undefined);
      const done = Number(nums[0]);
      const total = Number(nums[1]);
      const fraction = total > 0 ? Math.min(done / total, 1) : 0;
      const what = /Tile/.test(sample[0]) ? 'tile' : 'sample';
      const frame = this.frame === undefined ? '' : `frame ${this.frame}, `;
      return {
        progress: this.progress(fraction),
        status: `Rendering ${frame}${what} ${done}/${total}`,
      };
    }
    if (fra) {
      // `Fra:1 Mem:… | Scene, ViewLayer | Synchronizing object | Cube` → what it is doing.
      const parts = text.split('|').map((p) => p.trim());
      // The `Scene, ViewLayer` segment is the only one with a comma and no colon.
      const scene = parts.findIndex((p) => p.includes(', ') && !p.includes(':'));
      const doing = scene < 0 ? '' : parts.slice(scene + 1).join(' | ');
      return { status: `Frame ${fra[1]}: ${doing || 'rendering'}` };
    }
    return undefined;
  }

  private progress(fraction: number): number {
    if (this.frameCount === 0) return 0;
    const p = ((this.framesDone + fraction) / this.frameCount) * 100;
    return Math.min(100, Math.round(p * 10) / 10);
  }
}
