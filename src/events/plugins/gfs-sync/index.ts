import { FOLDER_RESULT_PREFIX, type FolderOutcome } from '../../../core/app-settings.js';
import type { JobSubmissionInput } from '../../../core/job-spec.js';
import type { ConfigEntry, ConfigValues } from '../../../core/plugin-config.js';
import type { Job, TaskLogChunk } from '../../../core/types.js';
import type { EventPlugin, PluginContext } from '../../plugin.js';

/**
 * gfs-sync: race-free output folders for multi-region rendering (Deadline's Hammerspace
 * event plugin, improved). Before a job with output directories renders, a folder job
 * creates them in one region and waits until the global file system has synced them to
 * every site; only then is the render job released.
 *
 * Improvements on the original: the render job is never dispatchable before this runs
 * (the host holds it); its existing dependencies are kept instead of replaced; directories
 * travel as a list (a `;` in a path no longer splits it); the folder job checks before it
 * first sleeps; sync is judged per site; the outcome of each folder is kept as data on both
 * jobs.
 */

/** Deadline's marker: jobs with this extra info set to True are the plugin's own. */
export const GENERATED_KEY = 'HS_PLUGIN_GENERATED';
/** On a folder job: the id of the render job it prepares. */
export const FOLDER_JOB_FOR = 'DROVER_FOLDER_JOB_FOR';
export const FOLDER_JOB_COMMENT =
  'gfs-sync job: creates the output directories in one region and waits until the global file system has synced them to every site';
export const RESULT_PREFIX = FOLDER_RESULT_PREFIX;

export interface GfsSyncData {
  folderJob: string;
  renderJob: string;
  outcomes: Array<{ directory: string; outcome: FolderOutcome }>;
}

const config: ConfigEntry[] = [
  {
    key: 'pool',
    type: 'string',
    label: 'Pool',
    category: 'Job Options',
    default: '',
    description: "Pool of the folder job; blank = the render job's pool.",
  },
  {
    key: 'group',
    type: 'string',
    label: 'Group',
    category: 'Job Options',
    default: '',
    description: "Group of the folder job; blank = the render job's group.",
  },
  {
    key: 'limits',
    type: 'string',
    label: 'Limits',
    category: 'Job Options',
    default: '',
    description: "Limits of the folder job, comma-separated; blank = the render job's limits.",
  },
  {
    key: 'priorityOffset',
    type: 'integer',
    label: 'Priority Offset',
    category: 'Job Options',
    default: 0,
    min: -100,
    max: 100,
    description: "Added to the render job's priority (the result is kept within 0–100).",
  },
  {
    key: 'region',
    type: 'string',
    label: 'Region',
    category: 'Job Options',
    default: '',
    description:
      "The region the folder job runs in; blank = the render job's first region, or any.",
  },
  {
    key: 'iterationDelay',
    type: 'integer',
    label: 'Iteration Delay (seconds)',
    category: 'Sync',
    default: 1,
    min: 0,
    max: 100,
    description: 'Seconds to wait between two checks of the global file system.',
  },
  {
    key: 'iterationCount',
    type: 'integer',
    label: 'Iteration Count',
    category: 'Sync',
    default: 20,
    min: 0,
    max: 500,
    description: 'Checks before giving up and releasing the render job anyway (0: do not wait).',
  },
  {
    key: 'gfs',
    type: 'enum',
    label: 'Global File System',
    category: 'Sync',
    default: 'hammerspace',
    items: ['hammerspace', 'simulated', 'local'],
    description: 'How the folder job asks whether a folder has reached every site.',
  },
  {
    key: 'gfsRoot',
    type: 'path',
    label: 'Simulated GFS Root',
    category: 'Sync',
    default: '',
    description: 'For the simulated GFS: its root folder as the workers see it.',
  },
];

export function isPluginGenerated(job: Pick<Job, 'extraInfo'>): boolean {
  const v = job.extraInfo[GENERATED_KEY];
  return v !== undefined && v.trim().toLowerCase() === 'true';
}

/** Output directories without repeats, in their first order. */
export function uniqueDirectories(dirs: readonly string[]): string[] {
  return [...new Set(dirs)];
}

const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/** The folder job for a render job, from the plugin's configuration (blank = the job's own). */
export function folderJobFor(job: Job, c: ConfigValues): JobSubmissionInput {
  const region = String(c.region) || job.regions[0] || '';
  return {
    name: `${job.name} [Make Directories]`,
    batchName: job.batchName || job.name,
    department: job.department,
    user: job.user,
    machineName: job.machineName,
    comment: FOLDER_JOB_COMMENT,
    onComplete: job.onComplete,
    pool: String(c.pool) || job.pool,
    group: String(c.group) || job.group,
    limits: String(c.limits) ? list(String(c.limits)) : job.limits,
    priority: Math.min(100, Math.max(0, job.priority + Number(c.priorityOffset))),
    regions: region ? [region] : [],
    plugin: 'MakeDirectories',
    frames: '0',
    pluginInfo: {
      directories: uniqueDirectories(job.outputDirectories),
      iterationDelay: Number(c.iterationDelay),
      iterationCount: Number(c.iterationCount),
      gfs: String(c.gfs),
      ...(String(c.gfsRoot) ? { gfsRoot: String(c.gfsRoot) } : {}),
    },
    extraInfo: { [GENERATED_KEY]: 'True', [FOLDER_JOB_FOR]: job.id },
  };
}

/** The outcomes the folder job's log reports, matched to its (unmapped) directories. */
export function parseOutcomes(
  log: readonly TaskLogChunk[],
  directories: readonly string[],
): GfsSyncData['outcomes'] | undefined {
  const text = log
    .filter((c) => c.stream === 'stdout')
    .map((c) => c.text)
    .join('');
  const line = text
    .split('\n')
    .reverse()
    .find((l) => l.startsWith(RESULT_PREFIX));
  if (!line) return undefined;
  const parsed = JSON.parse(line.slice(RESULT_PREFIX.length)) as { outcomes: FolderOutcome[] };
  return directories.map((directory, i) => ({
    directory,
    outcome: parsed.outcomes[i] ?? 'Sync Timed Out',
  }));
}

async function onJobSubmitted(job: Job, ctx: PluginContext): Promise<void> {
  if (isPluginGenerated(job)) return;
  if (uniqueDirectories(job.outputDirectories).length === 0) return;
  // At least once: after a crash this runs again; a folder job made the first time stays the one.
  for (const dep of job.dependencies) {
    const d = await ctx.farm.fetchJob(dep);
    if (d?.extraInfo[FOLDER_JOB_FOR] === job.id) return;
  }
  if (!job.batchName) await ctx.farm.updateJob(job.id, { batchName: job.name });
  const folder = await ctx.farm.submitPrerequisiteJob(job.id, folderJobFor(job, ctx.config));
  ctx.log.info({ jobId: job.id, folderJob: folder.id }, 'folder job submitted');
}

async function onJobFinished(job: Job, ctx: PluginContext): Promise<void> {
  const renderJob = job.extraInfo[FOLDER_JOB_FOR];
  if (!renderJob) return;
  const directories = (job.pluginInfo.directories as string[] | undefined) ?? [];
  const outcomes = parseOutcomes(await ctx.farm.readTaskLog(job.id, 0), directories);
  if (!outcomes) {
    ctx.log.warn({ jobId: job.id }, 'folder job finished without reporting outcomes');
    return;
  }
  const data: GfsSyncData = { folderJob: job.id, renderJob, outcomes };
  await ctx.farm.setJobData(job.id, data);
  if (await ctx.farm.fetchJob(renderJob)) await ctx.farm.setJobData(renderJob, data);
}

export const gfsSyncPlugin: EventPlugin = {
  name: 'gfs-sync',
  description:
    "Creates a job's output directories in one region and waits until the global file system has synced them to every site before the job renders (Deadline's Hammerspace plugin).",
  defaultState: 'disabled',
  config,
  handlers: { onJobSubmitted, onJobFinished },
};
