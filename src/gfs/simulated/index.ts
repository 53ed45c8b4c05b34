export { createSimulatedGfs, locate, type SimulatedGfsOptions } from './adapter.js';
export { describeSites, type SiteListing } from './describe.js';
export {
  collisionName,
  createSimulatedGfsLayout,
  isCollisionName,
  parseSiteSpec,
  readSimulatedGfsLayout,
  siteRoot,
  type SimulatedGfsLayout,
  type SimulatedGfsLayoutOptions,
  type SimulatedSite,
} from './layout.js';
export { readLedger, type Ledger, type LedgerEntry } from './ledger.js';
export { Replicator, type ReplicatorOptions } from './replicator.js';
export { runGfsSim, type GfsSimOptions } from './run.js';
