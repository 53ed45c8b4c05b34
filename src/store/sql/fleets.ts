import type { FleetStore } from '../fleet-contract.js';
import type { StoreKit } from './kit.js';

/** Fleets on SQL (see `fleet-contract.ts`). */
export class SqlFleetStore implements FleetStore {
  constructor(private readonly kit: StoreKit) {}
}
