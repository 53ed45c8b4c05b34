import { isAbsolute, relative, resolve, sep } from 'node:path';
import { trimTrailingSeparator } from '../../core/paths.js';
import { statDirectory } from '../directory.js';
import { directorySync, notOnGfs, type GlobalFileSystem, type SiteSync } from '../types.js';
import { readSimulatedGfsLayout, sitesDir } from './layout.js';
import { readLedger } from './ledger.js';

export interface SimulatedGfsOptions {
  /** Root of a simulated GFS made by `createSimulatedGfsLayout`. */
  root: string;
}

/**
 * The simulated GFS as workers and the `gfs-sync` plugin see it. A directory's site comes
 * from its path (`<root>/sites/<site>/…`); its sync state from the replicator's ledger,
 * re-read on every call so answers are as fresh as the replicator's last tick.
 */
export function createSimulatedGfs(options: SimulatedGfsOptions): GlobalFileSystem {
  const root = resolve(options.root);
  return {
    kind: 'simulated',
    async syncState(dir) {
      await statDirectory(dir);
      const located = locate(root, dir);
      if (!located) return notOnGfs(dir);
      const layout = await readSimulatedGfsLayout(root);
      if (!layout.sites.some((s) => s.name === located.site)) return notOnGfs(dir);
      const others = layout.sites.filter((s) => s.name !== located.site);
      if (located.path === '') {
        // A site's root exists at every site from the start.
        return directorySync(
          dir,
          others.map((s) => ({ site: s.name, synced: true, sendTime: null })),
        );
      }
      const ledger = await readLedger(root);
      const entry = ledger.entries.find(
        (e) => e.kind === 'dir' && e.at[located.site]?.path === located.path,
      );
      const sites: SiteSync[] = others.map((site) => {
        const placement = entry?.at[site.name];
        return {
          site: site.name,
          synced: placement !== undefined,
          sendTime: placement?.sendTime ?? null,
        };
      });
      return directorySync(dir, sites);
    },
  };
}

/** `<root>/sites/<site>/a/b` → `{ site, path: 'a/b' }`; undefined outside the sites folder. */
export function locate(root: string, dir: string): { site: string; path: string } | undefined {
  const rel = relative(sitesDir(root), resolve(trimTrailingSeparator(dir)));
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return undefined;
  const [site, ...rest] = rel.split(sep);
  if (site === undefined || site === '') return undefined;
  return { site, path: rest.join('/') };
}
