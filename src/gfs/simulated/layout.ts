/**
 * The simulated GFS's layout on disk: one directory tree per site under one root, plus the
 * replicator's state beside them.
 *
 * ```
 * <root>/sites/us-west-2/…     Oregon's view of the GFS
 * <root>/sites/eu-west-2/…     London's view
 * <root>/.gfs-sim/layout.json  site names and Hammerspace-like numeric site ids
 * <root>/.gfs-sim/ledger.json  what reached which site, and when (written by the replicator)
 * ```
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { text } from '../../core/text.js';
import { DroverError, invalid } from '../../core/errors.js';

/** One site of the simulated GFS: a region name and the numeric id collisions are named by. */
export interface SimulatedSite {
  name: string;
  id: number;
}

export interface SimulatedGfsLayout {
  root: string;
  sites: SimulatedSite[];
}

export interface SimulatedGfsLayoutOptions {
  root: string;
  /** In order; a site without an id gets 0, 10, 20, … by position (Hammerspace-like). */
  sites: ReadonlyArray<string | { name: string; id?: number }>;
}

const SITE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

const siteSchema = z.object({
  name: text().regex(SITE_NAME),
  id: z.number().int().min(0),
});
const layoutFileSchema = z.object({ format: z.literal(1), sites: z.array(siteSchema).min(1) });

export const STATE_DIR = '.gfs-sim';

export function stateDir(root: string): string {
  return join(root, STATE_DIR);
}

function layoutFile(root: string): string {
  return join(stateDir(root), 'layout.json');
}

/** The folder holding every site's tree. */
export function sitesDir(root: string): string {
  return join(root, 'sites');
}

/** Where a site's view of the GFS lives: `<root>/sites/<site>`. */
export function siteRoot(root: string, site: string): string {
  if (!SITE_NAME.test(site)) throw invalid('site', `"${site}" is not a valid site name`);
  return join(sitesDir(root), site);
}

/**
 * Parses `us-west-2` or `us-west-2=0` (a CLI-friendly site spec with an explicit id).
 */
export function parseSiteSpec(spec: string): { name: string; id?: number } {
  const eq = spec.indexOf('=');
  if (eq < 0) return { name: spec.trim() };
  const name = spec.slice(0, eq).trim();
  const rawId = spec.slice(eq + 1).trim();
  const id = Number(rawId);
  if (rawId === '' || !Number.isInteger(id) || id < 0) {
    throw invalid('sites', `site id in "${spec}" must be a whole number ≥ 0`);
  }
  return { name, id };
}

/** Applies default ids and checks names and ids are valid and unique. */
export function resolveSites(sites: SimulatedGfsLayoutOptions['sites']): SimulatedSite[] {
  if (sites.length === 0) throw invalid('sites', 'at least one site is needed');
  const resolved = sites.map((site, index) => {
    const spec = typeof site === 'string' ? parseSiteSpec(site) : site;
    const id = spec.id ?? index * 10;
    if (!SITE_NAME.test(spec.name)) {
      throw invalid(
        'sites',
        `"${spec.name}" is not a valid site name (letters, digits, ".", "_", "-")`,
      );
    }
    if (!Number.isInteger(id) || id < 0) {
      throw invalid('sites', `site id of ${spec.name} must be a whole number ≥ 0`);
    }
    return { name: spec.name, id };
  });
  const names = new Set(resolved.map((s) => s.name));
  if (names.size !== resolved.length) throw invalid('sites', 'site names must be unique');
  const ids = new Set(resolved.map((s) => s.id));
  if (ids.size !== resolved.length) throw invalid('sites', 'site ids must be unique');
  return resolved;
}

/**
 * Creates (or reopens) a simulated GFS: one folder per site and `layout.json`. Reopening with
 * the same sites is fine; different sites are refused, because the ledger's identities would
 * no longer match the trees.
 */
export async function createSimulatedGfsLayout(
  options: SimulatedGfsLayoutOptions,
): Promise<SimulatedGfsLayout> {
  const sites = resolveSites(options.sites);
  const root = options.root;
  const existing = await readSimulatedGfsLayout(root).catch((error: unknown) => {
    if (error instanceof DroverError && error.code === 'not_found') return undefined;
    throw error;
  });
  if (existing && JSON.stringify(existing.sites) !== JSON.stringify(sites)) {
    throw invalid(
      'sites',
      `${root} already holds a simulated GFS with sites ${describe(existing.sites)}, not ${describe(sites)}`,
    );
  }
  for (const site of sites) await mkdir(siteRoot(root, site.name), { recursive: true });
  if (!existing) await writeJsonAtomic(layoutFile(root), { format: 1, sites });
  return { root, sites };
}

function describe(sites: SimulatedSite[]): string {
  return sites.map((s) => `${s.name}=${s.id}`).join(',');
}

/** Reads `layout.json`; `not_found` when the root holds no simulated GFS. */
export async function readSimulatedGfsLayout(root: string): Promise<SimulatedGfsLayout> {
  let text: string;
  try {
    text = await readFile(layoutFile(root), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DroverError(
        'not_found',
        `no simulated GFS at ${root} (missing ${layoutFile(root)})`,
      );
    }
    throw error;
  }
  const parsed = layoutFileSchema.safeParse(safeJson(text));
  if (!parsed.success) {
    throw new DroverError('unavailable', `${layoutFile(root)} is not a valid layout file`);
  }
  return { root, sites: parsed.data.sites };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Writes JSON so a reader in another process sees the old file or the new one, never half:
 * temp file in the same folder, then rename (atomic on POSIX and NTFS).
 */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, JSON.stringify(value));
  await rename(temp, path);
}

/**
 * Names the replicator never copies and listings never show: dot-files (our own temp files
 * among them), Hammerspace gateway files, and half-written `.tmp`/`.part` files.
 */
export function isIgnoredName(name: string): boolean {
  return (
    name.startsWith('.') ||
    name.includes('.fs_command_gateway') ||
    name.endsWith('.tmp') ||
    name.endsWith('.part')
  );
}

/** Hammerspace's name for a colliding entry that came from another site: `Movie[#S=10]`. */
export function collisionName(name: string, originSiteId: number): string {
  return `${name}[#S=${originSiteId}]`;
}

export function isCollisionName(name: string): boolean {
  return name.includes('[#S=');
}
