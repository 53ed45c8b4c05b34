import type { ReplicationReply } from '../core/api.js';
import { DroverError } from '../core/errors.js';
import type { ConfigValues } from '../core/plugin-config.js';
import type { PluginHost } from '../events/host.js';
import { createGfs } from '../gfs/index.js';

/**
 * Each GFS site's replication lag, read through the GFS the gfs-sync plugin is configured
 * with (opened at each call, as the folder job's MakeDirectories app opens it). When it
 * cannot tell — no plugin, a bad configuration, an adapter without a source for it, an
 * unreadable GFS — `sites` is null and `note` says why.
 */
export async function gfsReplication(plugins: PluginHost | undefined): Promise<ReplicationReply> {
  let config: ConfigValues = {};
  try {
    config = plugins?.show('gfs-sync').config ?? {};
  } catch (error) {
    if (!(error instanceof DroverError && error.code === 'not_found')) throw error;
  }
  const kind = typeof config.gfs === 'string' ? config.gfs : '';
  const root = typeof config.gfsRoot === 'string' ? config.gfsRoot : '';
  if (kind === '') return { gfs: '', sites: null, note: 'the gfs-sync plugin is not loaded' };
  try {
    const gfs = createGfs(kind, root ? { root } : {});
    if (!gfs.replication) {
      return { gfs: kind, sites: null, note: `the ${kind} GFS does not report replication lag` };
    }
    return { gfs: kind, sites: await gfs.replication(Date.now()), note: null };
  } catch (error) {
    return { gfs: kind, sites: null, note: error instanceof Error ? error.message : String(error) };
  }
}
