import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type {
  EventListReply,
  HealthReply,
  LimitListReply,
  ReplicationReply,
} from '../../core/api.js';
import { eventTypes } from '../../core/types.js';
import type { Farm } from '../farm.js';
import { gfsReplication } from '../replication.js';
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
  app.get('/regions/replication', (): Promise<ReplicationReply> => gfsReplication(farm.plugins));

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
