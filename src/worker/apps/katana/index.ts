import {
  katanaCommandList,
  katanaSettingsSchema,
  parseAppSettings,
} from '../../../core/app-settings.js';
import type { TaskAssignment } from '../../../core/types.js';
import type { AppPlugin, LineInfo, OutputParser, ProcessSpec } from '../types.js';

/**
 * `Katana`: runs the ordered commands of a job Katana's farm plug-in submitted
 * (`integrations/katana/`), never through a shell. The runner runs them in order and fails
 * the task at the first one that fails. Arguments arrive path-mapped for this worker (each
 * command is a plugin setting); `{catalogServer}` in an argument becomes the artist's
 * Catalog Server address of a Preview or Live Render.
 */
export const katanaApp: AppPlugin = {
  name: 'Katana',

  processes(task: TaskAssignment): ProcessSpec[] {
    const settings = parseAppSettings(katanaSettingsSchema, task.pluginInfo);
    const env: Record<string, string> = {};
    if (settings.katanaRoot !== undefined) env.KATANA_ROOT = settings.katanaRoot;
    if (settings.catalogServer !== undefined) env.KATANA_CATALOG_SERVER = settings.catalogServer;
    return katanaCommandList(settings).map((argv) => {
      const spec: ProcessSpec = {
        argv: argv.map((arg) => arg.split('{catalogServer}').join(settings.catalogServer ?? '')),
        env,
      };
      if (settings.workingDirectory !== undefined) spec.cwd = settings.workingDirectory;
      return spec;
    });
  },

  createParser(): OutputParser {
    return { line: parseRenderbootLine };
  },
};

/**
 * What a renderboot line says. Assumed forms (Katana's renderboot and renderer plug-ins log
 * progress in their own words; these are the common ones): `Render progress: 45%`,
 * `[PROGRESS] 45%`, `PROGRESS: 45`, `45% complete`, `R00012 45% …`. No error detection:
 * the exit code decides, as Katana's own queue does.
 */
export function parseRenderbootLine(text: string): LineInfo | undefined {
  const m =
    /progress\]?\s*[:=]?\s*(\d+(?:\.\d+)?)\s*%?/i.exec(text) ??
    /(\d+(?:\.\d+)?)\s*%\s*(?:complete|done)/i.exec(text);
  if (!m) return undefined;
  const progress = Math.min(100, Number(m[1]));
  return { progress, status: `Katana ${progress}%` };
}
