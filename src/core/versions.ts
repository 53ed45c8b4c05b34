import { invalid } from './errors.js';
import { absolutePathProblem, trimTrailingSeparator } from './paths.js';

/**
 * Products and versions (issue 15: publishing).
 *
 * - product: a published output named by a path (`show/seq010/sh010/lightingMain`).
 * - version: one numbered render of a product (v001, v002, …), allocated atomically; it is
 *   published the moment its job is submitted (the job renders straight into the version's
 *   folder) and approved later. Unapproved versions are hidden from loaders by default.
 * - representation: one file type of a version (`beauty.####.png`): its frames, padding,
 *   file count and bytes.
 * - scene snapshot: the scene file the version's job renders from, copied into the version
 *   folder before the job is released and made read-only, with its sha256.
 */

export const versionStatuses = [
  'rendering',
  'pending review',
  'approved',
  'rejected',
  'failed',
  'incomplete',
] as const;
export type VersionStatus = (typeof versionStatuses)[number];

export interface Representation {
  /** The sequence's name (`beauty`, from `beauty.####.png`), or the file name of a single file. */
  name: string;
  /** Extension without the dot (`png`, `exr`). */
  ext: string;
  /** The sequence in `#` notation (`beauty.####.png`), or the file name. */
  pattern: string;
  /** Frames present, in Deadline's frame-list syntax (`1001-1024`), empty for a single file. */
  frames: string;
  first: number | null;
  last: number | null;
  padding: number;
  fileCount: number;
  bytes: number;
}

export interface SceneSnapshot {
  /** The scene as submitted. */
  source: string;
  /** The read-only copy in the version folder, which the job renders from. */
  path: string;
  sha256: string;
}

export interface Version {
  id: string;
  product: string;
  number: number;
  /** `v001`. */
  name: string;
  status: VersionStatus;
  /** The render job (null for a version published from an existing folder). */
  jobId: string | null;
  reviewJobId: string | null;
  submittedBy: string;
  submittedAt: number;
  comment: string;
  folder: string;
  representations: Representation[];
  /** Frames the job was to render that are missing or empty (an `incomplete` version). */
  missingFrames: number[];
  thumbnail: string | null;
  movie: string | null;
  scene: SceneSnapshot | null;
  /** Why the version failed, or its review job's error. */
  error: string;
  reviewedBy: string;
  reviewedAt: number | null;
  reviewComment: string;
  updatedAt: number;
}

export interface Product {
  name: string;
  /** The highest version number allocated so far. */
  lastVersion: number;
  /** The newest approved version's number, or null. */
  latestApproved: number | null;
  versionCount: number;
  createdAt: number;
}

/** `v001`, `v012`, `v1234`. */
export function versionName(n: number): string {
  return `v${String(n).padStart(3, '0')}`;
}

export const MAX_PRODUCT_LENGTH = 200;
export const MAX_PRODUCT_DEPTH = 8;
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Why `product` cannot name a product, or undefined. Segments of letters, digits, `.`, `_`
 * and `-` (not starting with `.` or `-`, so no `..` and no hidden folders), separated by
 * `/`; no empty segment; at most 8 segments and 200 characters. A product path becomes part
 * of a folder on every worker's file system, so it must mean the same thing everywhere.
 */
export function productProblem(product: string): string | undefined {
  if (product.length === 0) return 'must not be empty';
  if (product.length > MAX_PRODUCT_LENGTH) {
    return `must be at most ${MAX_PRODUCT_LENGTH} characters`;
  }
  const segments = product.split('/');
  if (segments.length > MAX_PRODUCT_DEPTH) return `must have at most ${MAX_PRODUCT_DEPTH} segments`;
  for (const s of segments) {
    if (s === '') return 'must not have an empty segment (no leading, trailing or double /)';
    if (s === '..' || s === '.') return 'must not have a "." or ".." segment';
    if (!SEGMENT.test(s)) {
      return `segment "${s.slice(0, 70)}" must be letters, digits, ".", "_" or "-" (not starting with "." or "-"), at most 64 characters`;
    }
  }
  return undefined;
}

/** Validates a product path; throws `invalid_input` naming `field`. */
export function checkProduct(product: string, field = 'product'): string {
  const problem = productProblem(product);
  if (problem) throw invalid(field, problem);
  return product;
}

export const DEFAULT_TEMPLATE = '{root}/{product}/v{version:03}';

/** Placeholders a folder template may use. */
const PLACEHOLDER = /\{(root|product|version)(?::0?(\d))?\}/g;

/** Why `template` cannot be a folder template, or undefined. */
export function templateProblem(template: string): string | undefined {
  if (template.length === 0 || template.length > 512) return 'must be 1 to 512 characters';
  if (!template.startsWith('{root}')) return 'must start with {root}';
  if (!template.includes('{product}')) return 'must contain {product}';
  if (!/\{version(:0?\d)?\}/.test(template)) return 'must contain {version} (e.g. v{version:03})';
  const rest = template.replace(PLACEHOLDER, 'x');
  if (/[{}]/.test(rest)) return 'may use only {root}, {product} and {version[:0N]}';
  if (rest.split(/[\\/]+/).some((s) => s === '..' || s === '.')) {
    return 'must not have a "." or ".." segment';
  }
  return undefined;
}

/** The folder of version `version` of `product` under `root` (`{root}/{product}/v{version:03}`). */
export function resolveTemplate(
  template: string,
  values: { root: string; product: string; version: number },
): string {
  return template.replace(PLACEHOLDER, (_m, key: string, width: string | undefined) => {
    if (key === 'root') return trimTrailingSeparator(values.root);
    if (key === 'product') return values.product;
    return String(values.version).padStart(width ? Number(width) : 0, '0');
  });
}

function segmentsOf(p: string): string[] {
  return p.split(/[\\/]+/).filter((s) => s !== '' && s !== '.');
}

/**
 * Whether `path` is `root` or inside it, segment by segment (both absolute, without `..`
 * segments: `absolutePathProblem` refuses those). Plain string work, as the monitor bundles
 * this module too.
 */
export function isWithin(path: string, root: string): boolean {
  if (path.startsWith('/') !== root.startsWith('/')) return false;
  const p = segmentsOf(path);
  const r = segmentsOf(root);
  if (p.some((s) => s === '..') || r.some((s) => s === '..')) return false;
  return p.length >= r.length && r.every((s, i) => s === p[i]);
}

/** The publish configuration: roots (absolute folders as jobs name them) and the template. */
export interface PublishConfig {
  roots: string[];
  template: string;
}

/** Parses the roots setting (comma- or semicolon-separated absolute folders). */
export function parseRoots(value: string): string[] {
  const roots = value
    .split(/[,;]/)
    .map((r) => r.trim())
    .filter(Boolean)
    .map(trimTrailingSeparator);
  for (const r of roots) {
    const problem = absolutePathProblem(r);
    if (problem) throw invalid('roots', problem);
  }
  return roots;
}

/**
 * The folder of a new version: the template resolved with the first root, checked to be
 * inside one of the publish roots (a template that leaves them is refused).
 */
export function versionFolder(config: PublishConfig, product: string, version: number): string {
  const root = config.roots[0];
  if (!root) {
    throw invalid(
      'publish',
      'publishing is not configured: set the publish event plugin\'s "roots" (drover plugin set publish roots=/path/to/publish)',
    );
  }
  const problem = templateProblem(config.template);
  if (problem) throw invalid('template', problem);
  const folder = trimTrailingSeparator(
    resolveTemplate(config.template, { root, product, version }),
  );
  const pathProblem = absolutePathProblem(folder);
  if (pathProblem) throw invalid('template', pathProblem);
  checkWithinRoots(folder, config.roots, 'template');
  return folder;
}

/** Throws `invalid_input` on `field` unless `folder` is inside one of `roots`. */
export function checkWithinRoots(folder: string, roots: readonly string[], field: string): void {
  if (!roots.some((r) => isWithin(folder, r) && folder !== r)) {
    throw invalid(
      field,
      `"${folder}" is not inside the publish roots (${roots.join(', ') || 'none configured'})`,
    );
  }
}

/**
 * The plugin setting that names a job's scene file, by application plugin: the file the
 * manager snapshots into the version folder (scene protection). Plugins not listed have none.
 */
export const sceneSettings: Readonly<Record<string, string>> = {
  Blender: 'sceneFile',
};

/** The scene setting of `plugin`, if it has one. */
export function sceneSettingOf(plugin: string): string | undefined {
  return Object.hasOwn(sceneSettings, plugin) ? sceneSettings[plugin] : undefined;
}

/** Which statuses may follow which (approval is a reviewer's decision, changeable). */
export function canReview(status: VersionStatus): boolean {
  return status === 'pending review' || status === 'approved' || status === 'rejected';
}
