/**
 * The global-file-system contract's types, kept apart from the factory in `contract.ts` so
 * adapters can import them without an import cycle (contract → adapter → contract).
 *
 * - GFS: a global file system spanning sites (Hammerspace and the like).
 * - site: one region's view of the GFS; its name is the region's (`us-west-2`).
 * - synced: a directory created at one site has reached another site, so a worker there that
 *   creates "the same" folder finds it instead of making a colliding twin.
 */

import type { SiteReplication } from '../core/api.js';

export type { SiteReplication };

/** How far a directory has reached one other site. */
export interface SiteSync {
  site: string;
  synced: boolean;
  /** ms epoch of the latest replication to that site, if any */
  sendTime: number | null;
}

export interface DirectorySync {
  path: string;
  /** false: the path is not managed by the GFS (Deadline's plugin: "Sync Skipped") */
  onGfs: boolean;
  /** one entry per OTHER site the directory must reach; empty for a single-site GFS */
  sites: SiteSync[];
  /** onGfs && every site synced */
  synced: boolean;
}

export type GfsKind = 'local' | 'simulated' | 'hammerspace';

export interface GlobalFileSystem {
  readonly kind: GfsKind;
  /**
   * Per-site sync state of a directory that exists at this site. Rejects with `not_found`
   * when the directory does not exist and `invalid_input` when the path is not a directory.
   */
  syncState(dir: string): Promise<DirectorySync>;
  /**
   * Each site's replication lag at `now` (ms epoch), where the GFS has a source for it (the
   * simulated GFS reads its replicator's ledger; Hammerspace's per-folder replies have none).
   */
  replication?(now: number): Promise<SiteReplication[]>;
}

/** The answer for a path the GFS does not manage. */
export function notOnGfs(path: string): DirectorySync {
  return { path, onGfs: false, sites: [], synced: false };
}

/** Builds a DirectorySync, deriving `synced` so the invariant cannot drift. */
export function directorySync(path: string, sites: SiteSync[]): DirectorySync {
  return { path, onGfs: true, sites, synced: sites.every((s) => s.synced) };
}
