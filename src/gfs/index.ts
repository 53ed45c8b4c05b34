/** The GFS layer's public surface: the contract and factory, and the simulated GFS's tools. */
export { createGfs, GFS_KINDS } from './contract.js';
export type { DirectorySync, GfsKind, GlobalFileSystem, SiteSync } from './types.js';
export { createLocalGfs } from './local/index.js';
export { createHammerspaceGfs, type HammerspaceGfsOptions } from './hammerspace/index.js';
export * from './simulated/index.js';
