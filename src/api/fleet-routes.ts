/**
 * The fleets' HTTP routes (see `routes.ts`, which spreads them into the one route table):
 * declared like every other route, with their access.
 */
import type { RouteDef } from './contract.js';

export const fleetRoutes = {} as const satisfies Record<string, RouteDef>;
