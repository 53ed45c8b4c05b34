/**
 * The few reply shapes that layers below the route contract (`src/api/`) produce: the error
 * body (every error reply is `{ "error": { "code", "message", "field"? } }`) and the GFS
 * replication report a GFS adapter computes. Every route and the rest of its replies are
 * declared in `src/api/routes.ts` and `src/api/replies.ts`.
 */
import type { ErrorCode } from './errors.js';

export interface ErrorReply {
  error: { code: ErrorCode; message: string; field?: string };
}

/** How far behind one site of the global file system is. */
export interface SiteReplication {
  site: string;
  /** Folders and files written at another site that have not reached this one yet. */
  pending: number;
  /** The age of the oldest of them (ms): the site's replication lag; 0 when caught up. */
  lagMs: number;
  /** How long the latest replication to this site took after the change (ms), if any. */
  lastDelayMs: number | null;
}

/**
 * The replication lag of each site of the GFS the gfs-sync plugin uses (sites are named
 * after regions), or `sites: null` and why when it cannot tell.
 */
export interface ReplicationReply {
  gfs: string;
  sites: SiteReplication[] | null;
  note: string | null;
}
