import type { VersionStore } from '../version-contract.js';
import type { StoreKit } from './kit.js';

/** Products and versions on SQL (see `version-contract.ts`). */
export class SqlVersionStore implements VersionStore {
  constructor(private readonly kit: StoreKit) {}
}
