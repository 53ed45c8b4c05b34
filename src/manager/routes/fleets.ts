import type { fleetRoutes } from '../../api/fleet-routes.js';
import { SCALER_PLUGIN } from '../../events/plugins/scaler/index.js';
import type { Farm } from '../farm.js';
import type { HandlersOf } from '../http/serve.js';

/** The fleets' routes (`src/api/fleet-routes.ts`). */
export function fleetHandlers(farm: Farm): HandlersOf<typeof fleetRoutes> {
  const fleets = farm.fleets;
  return {
    listFleets: async () => {
      const { fleets: list, unserved } = await fleets.list();
      let state = 'not loaded';
      try {
        state = farm.plugins?.show(SCALER_PLUGIN).state ?? state;
      } catch {
        // The manager runs without the scaler plugin.
      }
      return { fleets: list, unserved, scaler: { state, providers: [...fleets.providers.keys()] } };
    },
    getFleet: ({ params }) => fleets.get(params.name),
    fleetHistory: async ({ params, query }) => ({
      decisions: await fleets.history(params.name, query.since, query.limit),
    }),
    createFleet: async ({ body }) => ({ fleet: await fleets.create(body) }),
    updateFleet: async ({ params, body }) => ({ fleet: await fleets.update(params.name, body) }),
    deleteFleet: async ({ params }) => {
      await fleets.remove(params.name);
      return { ok: true as const };
    },
  };
}
