import { statDirectory } from '../directory.js';
import { directorySync, type GlobalFileSystem } from '../types.js';

/**
 * A single site: every existing directory is on the GFS and trivially synced, because there
 * is no other site to reach. This is the default for a farm in one place.
 */
export function createLocalGfs(): GlobalFileSystem {
  return {
    kind: 'local',
    async syncState(dir) {
      await statDirectory(dir);
      return directorySync(dir, []);
    },
  };
}
