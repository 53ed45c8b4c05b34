import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, chmod, constants, copyFile, mkdir, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Principal } from '../core/auth.js';
import { DroverError, conflict, invalid } from '../core/errors.js';
import type { JobSubmission } from '../core/job-spec.js';
import { defaultConfig, type ConfigValues, type PluginState } from '../core/plugin-config.js';
import { trimTrailingSeparator } from '../core/paths.js';
import type { Job } from '../core/types.js';
import {
  checkProduct,
  checkWithinRoots,
  sceneSettingOf,
  versionFolder,
  type SceneSnapshot,
  type Version,
} from '../core/versions.js';
import {
  PUBLISH_PLUGIN,
  VERSION_KEY,
  managerPath,
  publishConfigEntries,
  publishSettings,
  type PublishSettings,
} from '../events/plugins/publish/config.js';
import { scanAndReview } from '../events/plugins/publish/index.js';
import { SCENE_FOLDER } from '../events/plugins/publish/scan.js';
import type { Farm } from './farm.js';

/**
 * Publishing on the manager's side (issue 15): a submission that names a product gets the
 * next version, renders straight into its folder, and — when its application plugin names
 * a scene file — renders from a read-only snapshot of the scene in that folder. The rest
 * (scanning, review media, statuses) is the `publish` event plugin's.
 */

interface PublishContext {
  state: PluginState;
  config: ConfigValues;
  settings: PublishSettings;
  local: (path: string) => string;
}

/** The publish plugin's state and settings as saved in the store now (never a cache). */
async function publishContext(farm: Farm): Promise<PublishContext> {
  const saved = (await farm.store.listPluginSettings()).find((s) => s.name === PUBLISH_PLUGIN);
  const state = saved?.state ?? 'global';
  const config = { ...defaultConfig(publishConfigEntries), ...saved?.config };
  const settings = publishSettings(config);
  const rules = await farm.store.listPathMappings();
  return { state, config, settings, local: (p) => managerPath(p, rules, settings) };
}

function configured(ctx: PublishContext, field: string): void {
  if (ctx.state === 'disabled') {
    throw invalid(
      field,
      'the publish event plugin is disabled on this farm (an admin turns it on: drover plugin state publish global)',
    );
  }
  if (ctx.settings.roots.length === 0) {
    throw invalid(
      field,
      'publishing is not configured: an admin sets the publish roots (drover plugin set publish roots=/path/to/publish)',
    );
  }
}

function whoSubmits(submission: Pick<JobSubmission, 'user'>, principal?: Principal): string {
  return principal && principal.role !== 'worker' ? principal.name : submission.user;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** What `prepare` made: the version, and how to tie it to the job (or give it up). */
export interface PreparedPublish {
  version: Version;
  /** The job was created: the version records it. */
  created(job: Job): Promise<void>;
  /** The job could not be created: the version fails with the reason. */
  abandon(err: unknown): Promise<void>;
}

/**
 * Turns a submission with `publish` into a published one, changing `submission` in place:
 * the next version of the product is allocated (atomically), the job's output directory
 * becomes the version's folder, and a scene file the plugin names is copied into
 * `<folder>/scene/`, made read-only and checksummed, and the job renders from that copy.
 * Refused (nothing allocated) when publishing is off or unconfigured, or the scene cannot be
 * read; refused after allocation (the version is then `failed`) when its folder exists
 * already: nothing in a version folder is ever written by a later job.
 */
export async function preparePublish(
  farm: Farm,
  submission: JobSubmission,
  principal?: Principal,
): Promise<PreparedPublish> {
  const product = checkProduct(submission.publish ?? '', 'publish');
  delete submission.publish;
  const ctx = await publishContext(farm);
  configured(ctx, 'publish');
  // Checked before a number is taken: a template outside the roots is refused as is.
  versionFolder(ctx.settings, product, 1);

  const sceneSetting = sceneSettingOf(submission.plugin);
  const sceneValue = sceneSetting ? submission.pluginInfo[sceneSetting] : undefined;
  const sceneSource = typeof sceneValue === 'string' && sceneValue ? sceneValue : undefined;
  if (sceneSetting && sceneSource) {
    const local = ctx.local(sceneSource);
    try {
      await access(local, constants.R_OK);
      if (!(await stat(local)).isFile()) throw new Error('not a file');
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? errorText(err);
      throw invalid(
        `pluginInfo.${sceneSetting}`,
        `cannot read the scene file "${sceneSource}" (${why}); a published job renders from a copy of its scene`,
      );
    }
  }

  const version = await farm.store.versions.create({
    product,
    submittedBy: whoSubmits(submission, principal),
    comment: submission.comment,
    folderOf: (n) => versionFolder(ctx.settings, product, n),
  });
  const fail = async (error: string) => {
    await farm.store.versions
      .update(version.id, { status: 'failed', error }, 'version.failed')
      .catch((e: unknown) =>
        farm.log.error({ err: e, versionId: version.id }, 'could not fail version'),
      );
  };

  const localFolder = ctx.local(version.folder);
  let scene: SceneSnapshot | null = null;
  try {
    if (
      await stat(localFolder).then(
        () => true,
        () => false,
      )
    ) {
      throw conflict(
        `the version folder ${version.folder} exists already: a published version is never written into by a later job (remove the stray folder, or change the publish template)`,
      );
    }
    if (sceneSetting && sceneSource) {
      const dest = `${version.folder}/${SCENE_FOLDER}/${basename(sceneSource.replace(/\\/g, '/'))}`;
      const localDest = ctx.local(dest);
      await mkdir(ctx.local(`${version.folder}/${SCENE_FOLDER}`), { recursive: true });
      await copyFile(ctx.local(sceneSource), localDest, constants.COPYFILE_EXCL);
      await chmod(localDest, 0o444);
      scene = { source: sceneSource, path: dest, sha256: await sha256Of(localDest) };
      submission.pluginInfo = { ...submission.pluginInfo, [sceneSetting]: dest };
    }
  } catch (err) {
    await fail(errorText(err));
    if (err instanceof DroverError) throw err;
    throw invalid(
      sceneSetting ? `pluginInfo.${sceneSetting}` : 'publish',
      `could not snapshot the scene into ${version.folder}: ${errorText(err)}`,
    );
  }

  submission.outputDirectories = [version.folder];
  submission.extraInfo = { ...submission.extraInfo, [VERSION_KEY]: version.id };
  if (ctx.state === 'opt-in' && !submission.eventOptIns.includes(PUBLISH_PLUGIN)) {
    submission.eventOptIns = [...submission.eventOptIns, PUBLISH_PLUGIN];
  }
  return {
    version,
    async created(job) {
      if (job.extraInfo[VERSION_KEY] !== version.id) {
        // An idempotent repeat answered with the first job: this version is not used.
        await fail(
          `a repeated submission: job ${job.id} renders ${job.extraInfo[VERSION_KEY] ?? 'another version'}`,
        );
        return;
      }
      await farm.store.versions.update(version.id, { jobId: job.id, scene });
    },
    abandon: (err) => fail(`the job could not be created: ${errorText(err)}`),
  };
}

export interface PublishExistingInput {
  folder: string;
  product: string;
  comment: string;
}

/**
 * `drover publish DIR --product P`: registers a folder of rendered images as the product's
 * next version, as it is (nothing copied), then scans it and submits its review job like a
 * render job's version. The folder must be inside the publish roots and not be another
 * version's.
 */
export async function publishExisting(
  farm: Farm,
  input: PublishExistingInput,
  principal?: Principal,
): Promise<Version> {
  const product = checkProduct(input.product, 'product');
  const folder = trimTrailingSeparator(input.folder);
  const ctx = await publishContext(farm);
  configured(ctx, 'folder');
  checkWithinRoots(folder, ctx.settings.roots, 'folder');
  const local = ctx.local(folder);
  const isDir = await stat(local).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) throw invalid('folder', `"${folder}" is not a folder the manager can read`);
  const version = await farm.store.versions.create({
    product,
    submittedBy: principal?.name ?? '',
    comment: input.comment,
    folderOf: () => folder,
  });
  return scanAndReview(version, undefined, {
    config: ctx.config,
    farm: {
      versions: farm.store.versions,
      listPathMappings: () => farm.store.listPathMappings(),
      submitJob: (job) => farm.submitJob(job, principal),
    },
  });
}
