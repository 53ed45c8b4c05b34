import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type {
  EventListReply,
  HealthReply,
  LimitListReply,
  ReplicationReply,
} from '../../core/api.js';
import { DroverError } from '../../core/errors.js';
import type { ConfigValues } from '../../core/plugin-config.js';
import { createGfs } from '../../gfs/index.js';
import { eventTypes } from '../../core/types.js';
import type { Farm } from '../farm.js';
import { parseInput } from '../../core/validate.js';
import { VERSION } from '../version.js';

const eventQuery = z.object({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  type: z
    .string()
    .max(1000)
    .transform((s) => s.split(',').filter(Boolean))
    .pipe(z.array(z.enum(eventTypes)))
    .optional(),
  job: z.string().max(64).optional(),
});
const limitParams = z.object({
  name: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[^\s,]+$/, 'must not contain spaces or commas'),
});
const limitBody = z.object({ max: z.number().int().min(0).max(1_000_000) }).strict();

export function farmRoutes(app: FastifyInstance, farm: Farm): void {
  const store = farm.store;

  // 503 while the store is unreachable (e.g. PostgreSQL restarting): load balancers and
  // workers with several manager addresses move to another manager meanwhile.
  app.get('/health', async (_req, reply): Promise<HealthReply> => {
    const health = await store.health();
    if (!health.ok) reply.status(503);
    return { ok: health.ok, version: VERSION, store: store.kind, detail: health.detail };
  });

  // The GFS sites' replication lag (the monitor's Regions page), from the GFS the gfs-sync
  // plugin is configured with, read through its adapter at each call.
  app.get('/regions/replication', async (): Promise<ReplicationReply> => {
    let config: ConfigValues;
    try {
      config = farm.plugins?.show('gfs-sync').config ?? {};
    } catch (error) {
      if (error instanceof DroverError && error.code === 'not_found') config = {};
      else throw error;
    }
    const kind = typeof config.gfs === 'string' ? config.gfs : '';
    const root = typeof config.gfsRoot === 'string' ? config.gfsRoot : '';
    if (kind === '') return { gfs: '', sites: null, note: 'the gfs-sync plugin is not loaded' };
    let gfs;
    try {
      gfs = createGfs(kind, root ? { root } : {});
    } catch (error) {
      return {
        gfs: kind,
        sites: null,
        note: error instanceof Error ? error.message : String(error),
      };
    }
    if (!gfs.replication) {
      return { gfs: kind, sites: null, note: `the ${kind} GFS does not report replication lag` };
    }
    try {
      return { gfs: kind, sites: await gfs.replication(Date.now()), note: null };
    } catch (error) {
      return {
        gfs: kind,
        sites: null,
        note: `could not read it: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
  });

  // Who this token is: the monitor goes read-only for a read-only token.
  app.get('/whoami', (req): { name: string; role: string } =>
    req.principal
      ? { name: req.principal.name, role: req.principal.role }
      : { name: 'anonymous', role: 'admin' },
  );

  app.get('/events', async (req): Promise<EventListReply> => {
    const q = parseInput(eventQuery, req.query, 'query');
    const events = await store.listEvents({
      after: q.after,
      limit: q.limit,
      ...(q.type ? { types: q.type } : {}),
      ...(q.job ? { jobId: q.job } : {}),
    });
    return { events };
  });

  app.get('/limits', async (): Promise<LimitListReply> => ({ limits: await store.listLimits() }));

  app.put('/limits/:name', async (req): Promise<LimitListReply> => {
    const { name } = parseInput(limitParams, req.params, 'params');
    const { max } = parseInput(limitBody, req.body);
    await store.setLimit(name, max);
    farm.signal.wake();
    return { limits: await store.listLimits() };
  });
}
