import { stat } from 'node:fs/promises';
import { reviewOutputFiles, reviewSettingsSchema } from '../../../core/app-settings.js';
import { parseFrameList } from '../../../core/frames.js';
import type { ListedFile } from '../../../core/sequences.js';
import type { Job } from '../../../core/types.js';
import type { Version } from '../../../core/versions.js';
import type { ConfigValues } from '../../../core/plugin-config.js';
import type { EventPlugin, JobErrorReport, PluginContext, PluginFarm } from '../../plugin.js';
import {
  PUBLISH_PLUGIN,
  REVIEW_FOR,
  VERSION_KEY,
  managerPath,
  publishConfigEntries,
  publishSettings,
  type PublishSettings,
} from './config.js';
import { reviewJobFor } from './review.js';
import { listVersionFolder, reviewSequence, scanResult } from './scan.js';

/**
 * publish: follows the jobs of published versions (issue 15). A render job that finishes has
 * its version folder scanned (sequences checked against the job's frames: missing or empty
 * frames make the version `incomplete`), its representations recorded, and a review job
 * submitted; when the review job finishes the version is `pending review` with its thumbnail
 * and movie. A render job that fails fails its version; a review job that fails leaves the
 * version `pending review` with the error shown. Handlers are idempotent (they run at least
 * once): a version already past a step is left alone.
 */

/** What scanning a version folder needs (a plugin context, or the manager's own). */
export interface ScanContext {
  config: ConfigValues;
  farm: Pick<PluginFarm, 'versions' | 'listPathMappings' | 'submitJob'>;
}

async function settingsOf(ctx: ScanContext): Promise<{
  settings: PublishSettings;
  local: (path: string) => string;
}> {
  const settings = publishSettings(ctx.config);
  const rules = await ctx.farm.listPathMappings();
  return { settings, local: (p) => managerPath(p, rules, settings) };
}

/**
 * Scans `version`'s folder, records what it holds and submits its review job (render job
 * `job`, or none for a folder published as it is). Shared with `drover publish`.
 */
export async function scanAndReview(
  version: Version,
  job: Job | undefined,
  ctx: ScanContext,
): Promise<Version> {
  const { settings, local } = await settingsOf(ctx);
  const expected = job ? parseFrameList(job.frames) : undefined;
  const scan = async () => {
    let files: ListedFile[];
    try {
      files = await listVersionFolder(local(version.folder));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw err;
      files = [];
    }
    return scanResult(files, expected);
  };
  let result = await scan();
  // Frames rendered in other regions may still be on their way to this one (syncWait).
  const deadline = Date.now() + (job ? settings.syncWaitSeconds * 1000 : 0);
  while (result.missingFrames.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    result = await scan();
  }
  const incomplete = result.missingFrames.length > 0 || result.representations.length === 0;
  const sequence = reviewSequence(result.sequences);
  const review = sequence
    ? await ctx.farm.submitJob(reviewJobFor(version, sequence, settings, job))
    : undefined;
  const noReview = sequence ? '' : 'no image sequence to make review media of';
  const changes = {
    representations: result.representations,
    missingFrames: result.missingFrames,
    reviewJobId: review?.id ?? null,
    movie: null,
    thumbnail: null,
    error: incomplete
      ? `frames missing or empty: ${result.missingFrames.length > 50 ? `${result.missingFrames.slice(0, 50).join(', ')}, …` : result.missingFrames.join(', ') || 'no files'}`
      : noReview,
  };
  if (incomplete) {
    return ctx.farm.versions.update(
      version.id,
      { ...changes, status: 'incomplete' },
      'version.incomplete',
    );
  }
  if (!review) {
    return ctx.farm.versions.update(
      version.id,
      { ...changes, status: 'pending review' },
      'version.ready',
    );
  }
  // Complete: the review job makes the media, then the version is pending review.
  return ctx.farm.versions.update(version.id, { ...changes, status: 'rendering' });
}

async function renderFinished(job: Job, versionId: string, ctx: PluginContext): Promise<void> {
  const version = await ctx.farm.versions.fetch(versionId);
  if (!version || version.jobId !== job.id) return;
  // A job requeued after it failed, or to render frames that were missing, finishes again:
  // its version is scanned again. A version already scanned (a handler run again after a
  // restart) or reviewed is left alone.
  const again = version.status === 'failed' || version.status === 'incomplete';
  if (!again && (version.status !== 'rendering' || version.reviewJobId)) return;
  const v = await scanAndReview(version, job, ctx);
  ctx.log.info(
    { versionId, product: v.product, version: v.name, status: v.status, reviewJob: v.reviewJobId },
    'version scanned',
  );
}

async function reviewFinished(job: Job, versionId: string, ctx: PluginContext): Promise<void> {
  const version = await ctx.farm.versions.fetch(versionId);
  if (!version || version.reviewJobId !== job.id || version.movie) return;
  const { local } = await settingsOf(ctx);
  // What the review job was asked to write (its settings as submitted, defaults applied).
  const files = reviewOutputFiles(reviewSettingsSchema.parse(job.pluginInfo));
  const movie = files.mp4;
  const thumbnail = files.thumbnail;
  const exists = async (p: string) =>
    p !== '' &&
    (await stat(local(p)).then(
      (s) => s.isFile() && s.size > 0,
      () => false,
    ));
  const [hasMovie, hasThumbnail] = await Promise.all([exists(movie), exists(thumbnail)]);
  const error =
    hasMovie && hasThumbnail
      ? ''
      : `review job ${job.id} finished without writing ${[!hasMovie && movie, !hasThumbnail && thumbnail].filter(Boolean).join(' and ')}`;
  await ctx.farm.versions.update(
    version.id,
    {
      movie: hasMovie ? movie : null,
      thumbnail: hasThumbnail ? thumbnail : null,
      // An incomplete version stays so: its media are still worth seeing.
      ...(version.status === 'rendering' ? { status: 'pending review' as const } : {}),
      ...(version.status === 'incomplete' ? {} : { error }),
    },
    version.status === 'rendering' ? 'version.ready' : 'version.updated',
  );
}

async function onJobFinished(job: Job, ctx: PluginContext): Promise<void> {
  const reviewFor = job.extraInfo[REVIEW_FOR];
  if (reviewFor) return reviewFinished(job, reviewFor, ctx);
  const versionId = job.extraInfo[VERSION_KEY];
  if (versionId) return renderFinished(job, versionId, ctx);
}

async function onJobFailed(job: Job, ctx: PluginContext): Promise<void> {
  const reviewFor = job.extraInfo[REVIEW_FOR];
  if (reviewFor) {
    const version = await ctx.farm.versions.fetch(reviewFor);
    if (!version || version.reviewJobId !== job.id) return;
    const error = `review job ${job.id} failed${version.error && version.status === 'rendering' ? `: ${version.error}` : ''}`;
    await ctx.farm.versions.update(
      version.id,
      {
        ...(version.status === 'rendering' ? { status: 'pending review' as const, error } : {}),
      },
      version.status === 'rendering' ? 'version.ready' : 'version.updated',
    );
    return;
  }
  const versionId = job.extraInfo[VERSION_KEY];
  if (!versionId) return;
  const version = await ctx.farm.versions.fetch(versionId);
  if (!version || version.status !== 'rendering' || version.reviewJobId) return;
  await ctx.farm.versions.update(
    version.id,
    {
      status: 'failed',
      error: `render job ${job.id} failed${job.pendingReason ? `: ${job.pendingReason}` : ''}`,
    },
    'version.failed',
  );
}

/** A review job's task error is kept on its version (shown while it is retried, and after). */
async function onJobError(job: Job, report: JobErrorReport, ctx: PluginContext): Promise<void> {
  const reviewFor = job.extraInfo[REVIEW_FOR];
  if (!reviewFor) return;
  const version = await ctx.farm.versions.fetch(reviewFor);
  if (!version || version.reviewJobId !== job.id || version.status !== 'rendering') return;
  await ctx.farm.versions.update(version.id, { error: report.message.slice(0, 2000) });
}

async function onJobDeleted(job: Job, ctx: PluginContext): Promise<void> {
  const versionId = job.extraInfo[VERSION_KEY];
  if (!versionId) return;
  const version = await ctx.farm.versions.fetch(versionId);
  if (!version || version.status !== 'rendering' || version.reviewJobId) return;
  await ctx.farm.versions.update(
    version.id,
    { status: 'failed', error: `render job ${job.id} was deleted before it finished` },
    'version.failed',
  );
}

export const publishPlugin: EventPlugin = {
  name: PUBLISH_PLUGIN,
  description:
    'Publishes renders as versions: jobs submitted with a product render straight into the next version folder; when they finish, the folder is scanned, checked against the frame list and a review job makes a thumbnail and a movie.',
  // It acts only on jobs the manager marked as published (and their review jobs).
  defaultState: 'global',
  config: publishConfigEntries,
  handlers: { onJobFinished, onJobFailed, onJobError, onJobDeleted },
};
