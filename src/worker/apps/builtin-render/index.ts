import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinRenderSettingsSchema, parseAppSettings } from '../../../core/app-settings.js';
import { invalid } from '../../../core/errors.js';
import type { TaskAssignment } from '../../../core/types.js';
import type { AppPlugin, LineInfo, OutputParser, ProcessSpec } from '../types.js';

/**
 * The compiled renderer entry (`dist/worker/apps/builtin-render/main.js`), found next to this
 * module so the worker runs the renderer it was shipped with, wherever it is installed.
 */
export const builtinRenderScript = fileURLToPath(new URL('./main.js', import.meta.url));

/**
 * `builtin-render`: runs Drover's own CPU renderer as a separate process (with the same Node
 * as the worker), one process per task, writing PNG frames into the job's first output
 * directory.
 */
export const builtinRenderApp: AppPlugin = {
  name: 'builtin-render',

  processes(task: TaskAssignment): ProcessSpec[] {
    const settings = parseAppSettings(builtinRenderSettingsSchema, task.pluginInfo);
    const outputDirectory = task.outputDirectories[0];
    if (outputDirectory === undefined) {
      throw invalid(
        'outputDirectories',
        "the builtin-render plugin writes frames to the job's first output directory; submit the job with outputDirectories",
      );
    }
    // `--name=value` so a negative frame list (`-5,-4`) is not read as an option.
    const argv = [
      process.execPath,
      builtinRenderScript,
      `--frames=${task.frames.join(',')}`,
      `--width=${settings.width}`,
      `--height=${settings.height}`,
      `--samples=${settings.samples}`,
      `--scene=${settings.scene}`,
      `--output=${join(outputDirectory, settings.outputPattern)}`,
      `--frame-delay-ms=${settings.frameDelayMs}`,
    ];
    return [{ argv }];
  },

  createParser(): OutputParser {
    return {
      line(text: string): LineInfo | undefined {
        const progress = /^Progress:\s*(\d+(?:\.\d+)?)%/.exec(text);
        if (progress) return { progress: Math.min(100, Number(progress[1])) };
        const error = /^Error:\s*(.*)$/.exec(text);
        if (error) return { error: error[1] ?? text };
        const rendering = /^Rendering frame (-?\d+) \((\d+)\/(\d+)\)/.exec(text);
        if (rendering)
          return { status: `Rendering frame ${rendering[1]} (${rendering[2]}/${rendering[3]})` };
        return undefined;
      },
    };
  },
};
