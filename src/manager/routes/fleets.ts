import type { fleetRoutes } from '../../api/fleet-routes.js';
import type { Farm } from '../farm.js';
import type { HandlersOf } from '../http/serve.js';

/** The fleets' routes (`src/api/fleet-routes.ts`). */
export function fleetHandlers(_farm: Farm): HandlersOf<typeof fleetRoutes> {
  return {};
}
