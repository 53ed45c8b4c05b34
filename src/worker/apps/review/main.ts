/**
 * Entry point of a review task's process: `node dist/worker/apps/review/main.js '<settings
 * JSON>'` (see `run-review.ts`). The worker's environment may name the ffmpeg executable
 * (`DROVER_FFMPEG`, default `ffmpeg` on PATH) and the burn-in font (`DROVER_REVIEW_FONT`).
 */
import { parseAppSettings, reviewSettingsSchema } from '../../../core/app-settings.js';
import { DEFAULT_FONT } from './ffmpeg-args.js';
import { runReview } from './run-review.js';

const print = (line: string) => process.stdout.write(`${line}\n`);
try {
  const settings = parseAppSettings(reviewSettingsSchema, JSON.parse(process.argv[2] ?? '{}'));
  process.exitCode = await runReview(settings, {
    ffmpeg: process.env.DROVER_FFMPEG || 'ffmpeg',
    fontFile: process.env.DROVER_REVIEW_FONT || DEFAULT_FONT,
    print,
  });
} catch (err) {
  print(`Error: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
