import type { Farm } from '../farm.js';
import type { Handlers } from '../http/serve.js';
import { gfsReplication } from '../replication.js';
import { VERSION } from '../version.js';

type FarmHandlers = Pick<
  Handlers,
  'health' | 'whoami' | 'replication' | 'listEvents' | 'listLimits' | 'setLimit'
>;

export function farmHandlers(farm: Farm): FarmHandlers {
  const store = farm.store;
  return {
    // 503 while the store is unreachable (e.g. PostgreSQL restarting) or refuses writes (its
    // disk is full: `degraded`): load balancers and workers with several manager addresses
    // move to another manager meanwhile.
    health: async ({ reply }) => {
      const health = await store.health();
      if (!health.ok) reply.status(503);
      return {
        ok: health.ok,
        version: VERSION,
        store: store.kind,
        detail: health.detail,
        ...(health.degraded ? { degraded: health.degraded } : {}),
      };
    },

    // Who this token is: the monitor goes read-only for a read-only token.
    whoami: ({ principal }) => ({
      name: principal?.name ?? 'anonymous',
      role: principal?.role ?? 'admin',
    }),

    // The GFS sites' replication lag (the monitor's Regions page), from the GFS the gfs-sync
    // plugin is configured with, read through its adapter at each call.
    replication: () => gfsReplication(farm.plugins),

    listEvents: async ({ query: q }) => ({
      events: await store.listEvents({
        after: q.after,
        limit: q.limit,
        ...(q.type ? { types: q.type } : {}),
        ...(q.job ? { jobId: q.job } : {}),
      }),
    }),

    listLimits: async () => ({ limits: await store.listLimits() }),

    setLimit: async ({ params: { name }, body }) => {
      await store.setLimit(name, body.max);
      farm.signal.wake();
      return { limits: await store.listLimits() };
    },
  };
}
