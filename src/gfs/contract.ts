/**
 * One contract for global file systems, several backends (DESIGN.md, principle 4): the
 * `gfs-sync` event plugin asks "has this output folder reached every other site yet?" and
 * does not care whether the answer comes from Hammerspace, the simulated multi-site GFS of
 * `drover dev`, or a plain single-site disk.
 */
import { invalid } from '../core/errors.js';
import { createHammerspaceGfs } from './hammerspace/index.js';
import { createLocalGfs } from './local/index.js';
import { createSimulatedGfs } from './simulated/adapter.js';
import type { GlobalFileSystem } from './types.js';

export type { DirectorySync, GfsKind, GlobalFileSystem, SiteSync } from './types.js';

export const GFS_KINDS = ['local', 'simulated', 'hammerspace'] as const;

/**
 * Creates the adapter named by `kind`.
 *
 * - `local`: no options.
 * - `simulated`: `root` — the simulated GFS's root folder (`<root>/sites/<site>/…`).
 * - `hammerspace`: optional `maxReplyBytes` — the most of a gateway reply that is read.
 *
 * Throws `invalid('gfs', …)` on an unknown kind or a missing/bad option.
 */
export function createGfs(kind: string, options: Record<string, string>): GlobalFileSystem {
  switch (kind) {
    case 'local':
      return createLocalGfs();
    case 'simulated': {
      const root = options['root'];
      if (root === undefined || root.trim() === '') {
        throw invalid('gfs', 'the simulated GFS needs a root folder (option "root")');
      }
      return createSimulatedGfs({ root });
    }
    case 'hammerspace': {
      const raw = options['maxReplyBytes'];
      if (raw === undefined) return createHammerspaceGfs();
      const maxReplyBytes = Number(raw);
      if (!Number.isInteger(maxReplyBytes) || maxReplyBytes < 1024) {
        throw invalid('gfs', `maxReplyBytes must be an integer ≥ 1024, got "${raw}"`);
      }
      return createHammerspaceGfs({ maxReplyBytes });
    }
    default:
      throw invalid('gfs', `unknown GFS kind "${kind}"; expected one of ${GFS_KINDS.join(', ')}`);
  }
}
