import { isAbsolute, relative, resolve, sep } from 'node:path';
import { trimTrailingSeparator } from '../../core/paths.js';
import { statDirectory } from '../directory.js';
import {
  directorySync,
  notOnGfs,
  type GlobalFileSystem,
  type SiteReplication,
  type SiteSync,
} from '../types.js';
import { readSimulatedGfsLayout, sitesDir } from './layout.js';
import { readLedger, type Ledger } from './ledger.js';

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
    async replication(now) {
      const layout = await readSimulatedGfsLayout(root);
      const ledger = await readLedger(root);
      return layout.sites.map((site) => siteReplication(ledger, site.name, now));
    },
  };
}

/**
 * One site's lag from the ledger: the entries (folders, and files at a newer version) that
 * reached some site but not this one yet, and the oldest change among them.
 */
export function siteReplication(ledger: Ledger, site: string, now: number): SiteReplication {
  let pending = 0;
  let oldest = Number.POSITIVE_INFINITY;
  let latest: { at: number; delay: number } | undefined;
  for (const e of ledger.entries) {
    const here = e.at[site];
    if (!here || (e.kind === 'file' && here.version < e.version)) {
      pending++;
      oldest = Math.min(oldest, e.changedAt);
    } else if (here.sendTime !== null && here.sendTime >= e.changedAt) {
      if (!latest || here.sendTime > latest.at) {
        latest = { at: here.sendTime, delay: here.sendTime - e.changedAt };
      }
    }
  }
  return {
    site,
    pending,
    lagMs: pending === 0 ? 0 : Math.max(0, now - oldest),
    lastDelayMs: latest?.delay ?? null,
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
