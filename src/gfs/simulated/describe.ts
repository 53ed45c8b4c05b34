import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isCollisionName, isIgnoredName, readSimulatedGfsLayout, siteRoot } from './layout.js';

/** What one site shows under a relative path. */
export interface SiteListing {
  site: string;
  id: number;
  /** false when the path does not exist at that site (the lists are then empty). */
  exists: boolean;
  /** Every folder below the path, recursively, relative to it, `/`-separated, sorted. */
  folders: string[];
  /** Every file below the path, recursively, relative to it, sorted. */
  files: string[];
  /** Folders named `NAME[#S=<id>]`: copies that arrived from another site and collided. */
  collisionFolders: string[];
}

/**
 * Lists what each site of a simulated GFS shows under `relPath` (default: everything). The
 * race demo counts collision folders and the frames that landed in the one intended folder.
 */
export async function describeSites(root: string, relPath = ''): Promise<SiteListing[]> {
  const layout = await readSimulatedGfsLayout(root);
  const listings: SiteListing[] = [];
  for (const site of layout.sites) {
    const base = join(siteRoot(root, site.name), ...relPath.split('/').filter(Boolean));
    const folders: string[] = [];
    const files: string[] = [];
    const exists = await walk(base, '', folders, files);
    folders.sort();
    files.sort();
    listings.push({
      site: site.name,
      id: site.id,
      exists,
      folders,
      files,
      collisionFolders: folders.filter((f) => isCollisionName(f.slice(f.lastIndexOf('/') + 1))),
    });
  }
  return listings;
}

async function walk(base: string, rel: string, folders: string[], files: string[]) {
  let children;
  try {
    children = await readdir(join(base, rel), { withFileTypes: true });
  } catch {
    return false;
  }
  for (const child of children) {
    if (isIgnoredName(child.name)) continue;
    const path = rel === '' ? child.name : `${rel}/${child.name}`;
    if (child.isDirectory()) {
      folders.push(path);
      await walk(base, path, folders, files);
    } else if (child.isFile()) {
      files.push(path);
    }
  }
  return true;
}
