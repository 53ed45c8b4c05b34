import { DEFAULT_TEMPLATE, parseRoots, templateProblem } from '../../../core/versions.js';
import { invalid } from '../../../core/errors.js';
import type { ConfigEntry, ConfigValues } from '../../../core/plugin-config.js';
import { mapPath, rulesFor, type PathMapping } from '../../../core/path-mapping.js';

/** The publish plugin's name: what jobs list in `eventOptIns` and what `drover plugin` shows. */
export const PUBLISH_PLUGIN = 'publish';
/** On a render job: the id of the version it renders (set by the manager at submission). */
export const VERSION_KEY = 'DROVER_VERSION';
/** On a review job: the id of the version whose review media it makes. */
export const REVIEW_FOR = 'DROVER_REVIEW_FOR';

/**
 * Where versions are published. Kept as the plugin's configuration, so every manager reads
 * the same roots and template from the store (a setting changed through one manager is in
 * force on all of them).
 */
export const publishConfigEntries: ConfigEntry[] = [
  {
    key: 'roots',
    type: 'string',
    label: 'Publish Roots',
    category: 'Folders',
    default: '',
    maxLength: 4096,
    description:
      'Absolute folders, comma-separated, as jobs name them (e.g. /gfs/publish). New versions go under the first; every version folder must be inside one of them.',
  },
  {
    key: 'template',
    type: 'string',
    label: 'Folder Template',
    category: 'Folders',
    default: DEFAULT_TEMPLATE,
    maxLength: 512,
    description:
      "A version's folder: {root}, {product} and {version:03} (zero-padded to 3 digits).",
  },
  {
    key: 'managerRegion',
    type: 'string',
    label: 'Manager Region',
    category: 'Folders',
    default: '',
    description:
      'The region whose path-mapping rules the manager applies to reach publish folders itself (to snapshot scenes and scan renders); blank = the paths as jobs name them.',
  },
  {
    key: 'syncWaitSeconds',
    type: 'integer',
    label: 'Sync Wait (seconds)',
    category: 'Folders',
    default: 0,
    min: 0,
    max: 600,
    description:
      "On a global file system that syncs files between sites after a delay: how long the scan of a finished job waits (looking again every second) for frames rendered in other regions to reach the manager's region before it calls them missing. The review job then runs in the manager's region.",
  },
  {
    key: 'fps',
    type: 'integer',
    label: 'Review Frame Rate',
    category: 'Review',
    default: 24,
    min: 1,
    max: 120,
    description: 'Frames per second of the review movie.',
  },
  {
    key: 'reviewPool',
    type: 'string',
    label: 'Review Pool',
    category: 'Review',
    default: '',
    description: "Pool of review jobs; blank = the render job's pool.",
  },
  {
    key: 'reviewGroup',
    type: 'string',
    label: 'Review Group',
    category: 'Review',
    default: '',
    description: "Group of review jobs; blank = the render job's group.",
  },
];

export interface PublishSettings {
  roots: string[];
  template: string;
  managerRegion: string;
  syncWaitSeconds: number;
  fps: number;
  reviewPool: string;
  reviewGroup: string;
}

/** The typed settings from the plugin's configuration values; bad roots or template throw. */
export function publishSettings(values: ConfigValues): PublishSettings {
  const template = String(values.template ?? DEFAULT_TEMPLATE) || DEFAULT_TEMPLATE;
  const problem = templateProblem(template);
  if (problem) throw invalid('template', problem);
  return {
    roots: parseRoots(String(values.roots ?? '')),
    template,
    managerRegion: String(values.managerRegion ?? ''),
    syncWaitSeconds: Number(values.syncWaitSeconds ?? 0) || 0,
    fps: Number(values.fps ?? 24) || 24,
    reviewPool: String(values.reviewPool ?? ''),
    reviewGroup: String(values.reviewGroup ?? ''),
  };
}

/**
 * A publish path as the manager reaches it: mapped with the rules of `settings.managerRegion`
 * for this machine's OS (as a worker of that region would see it), or as it is.
 */
export function managerPath(
  path: string,
  rules: readonly PathMapping[],
  settings: Pick<PublishSettings, 'managerRegion'>,
): string {
  if (!settings.managerRegion) return path;
  const os = process.platform;
  return mapPath(path, rulesFor(rules, { region: settings.managerRegion, os }), os);
}
