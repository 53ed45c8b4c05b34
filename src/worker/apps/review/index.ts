import { fileURLToPath } from 'node:url';
import { parseAppSettings, reviewSettingsSchema } from '../../../core/app-settings.js';
import type { AppPlugin, LineInfo } from '../types.js';
import { REVIEW_RESULT_PREFIX } from './run-review.js';

export type { ReviewPluginInfo, ReviewSettings } from '../../../core/app-settings.js';
export { REVIEW_RESULT_PREFIX, type ReviewResult } from './run-review.js';

/** The compiled entry (`dist/worker/apps/review/main.js`), next to this module. */
export const reviewScript = fileURLToPath(new URL('./main.js', import.meta.url));

/**
 * `review`: makes a version's review media (thumbnail, H.264 MP4, VP9 WebM with burn-ins)
 * with the worker's ffmpeg, in one process per task (`main.ts` → `run-review.ts`). The
 * settings are validated here and again by that process; ffmpeg runs without a shell.
 * A review job has one task (submit it with one frame and chunk size 1).
 */
export const reviewApp: AppPlugin = {
  name: 'review',

  processes(task) {
    const settings = parseAppSettings(reviewSettingsSchema, task.pluginInfo);
    return [{ argv: [process.execPath, reviewScript, JSON.stringify(settings)] }];
  },

  createParser() {
    return {
      line(text): LineInfo | undefined {
        const progress = /^Progress: (\d+)%/.exec(text);
        if (progress) return { progress: Math.min(100, Number(progress[1])) };
        if (text.startsWith('Error:')) return { error: text.slice('Error:'.length).trim() };
        if (text.startsWith('Making ')) return { status: text.slice(0, 200) };
        if (text.startsWith(REVIEW_RESULT_PREFIX)) return { status: 'Review media made' };
        return undefined;
      },
    };
  },
};
