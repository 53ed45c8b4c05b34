import { reviewOutputFiles, type ReviewPluginInfo } from '../../../core/app-settings.js';
import type { JobSubmissionInput } from '../../../core/job-spec.js';
import { formatSequencePattern, type FrameSequence } from '../../../core/sequences.js';
import type { Job } from '../../../core/types.js';
import type { Version } from '../../../core/versions.js';
import { PUBLISH_PLUGIN, REVIEW_FOR, type PublishSettings } from './config.js';
import { REVIEW_FOLDER } from './scan.js';

/** Where a version's review media go (as jobs name them): `<folder>/review/<leaf>_v001.*`. */
export function reviewMedia(version: Pick<Version, 'folder' | 'product' | 'name'>): {
  outputDirectory: string;
  outputName: string;
  movie: string;
  thumbnail: string;
} {
  const leaf = version.product.split('/').pop() ?? 'review';
  const outputDirectory = `${version.folder}/${REVIEW_FOLDER}`;
  const outputName = `${leaf}_${version.name}`.slice(0, 64);
  const files = reviewOutputFiles({ outputDirectory, outputName, webm: true });
  return { outputDirectory, outputName, movie: files.mp4, thumbnail: files.thumbnail };
}

/** The browser fallback of a review movie: the VP9 WebM beside the MP4. */
export function webmOf(movie: string): string {
  return movie.replace(/\.mp4$/, '.webm');
}

/**
 * The review job of a version: one task of the `review` application plugin (a worker runs
 * ffmpeg: `src/worker/apps/review/`) that makes the thumbnail, an H.264 MP4 and a VP9 WebM
 * with burn-ins of product, version and frame number, into `<folder>/review/`. It depends on
 * the render job (when there is one) and opts in to the publish plugin, which records its
 * media (or its error) on the version when it ends.
 */
export function reviewJobFor(
  version: Version,
  sequence: FrameSequence,
  settings: PublishSettings,
  renderJob: Job | undefined,
): JobSubmissionInput {
  const media = reviewMedia(version);
  const pluginInfo: ReviewPluginInfo = {
    inputDirectory: version.folder,
    inputPattern: formatSequencePattern(sequence, 'printf'),
    firstFrame: sequence.first,
    lastFrame: sequence.last,
    fps: settings.fps,
    outputDirectory: media.outputDirectory,
    outputName: media.outputName,
    product: version.product,
    version: version.number,
    webm: true,
  };
  return {
    name: `${version.product} ${version.name} [Review]`,
    batchName: renderJob ? renderJob.batchName || renderJob.name : version.product,
    user: version.submittedBy,
    department: renderJob?.department ?? '',
    comment: `review media of ${version.product} ${version.name}`,
    plugin: 'review',
    frames: '0',
    priority: renderJob?.priority ?? 50,
    pool: settings.reviewPool || renderJob?.pool || 'none',
    group: settings.reviewGroup || renderJob?.group || 'none',
    // Where the manager saw every frame (on a GFS that syncs late, other sites may not yet).
    regions: settings.managerRegion ? [settings.managerRegion] : (renderJob?.regions ?? []),
    dependencies: renderJob ? [renderJob.id] : [],
    eventOptIns: [PUBLISH_PLUGIN],
    taskRetries: 1,
    pluginInfo: pluginInfo as JobSubmissionInput['pluginInfo'],
    extraInfo: { [REVIEW_FOR]: version.id },
  };
}
