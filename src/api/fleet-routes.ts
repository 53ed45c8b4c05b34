/**
 * The fleets' HTTP routes (see `routes.ts`, which spreads them into the one route table):
 * declared like every other route, with their access. Reading fleets is for any reader;
 * changing them is for admins (a fleet spends money). (No `satisfies Record<string, RouteDef>`
 * here: its contextual type would make `route` infer absent params as any schema.)
 */
import { z } from 'zod';
import { fleetChangesSchema, fleetSchema } from '../core/fleet.js';
import { text } from '../core/text.js';
import { route } from './contract.js';
import * as r from './replies.js';

const fleetName = z.object({ name: text().min(1).max(64) });

export const fleetRoutes = {
  listFleets: route({
    name: 'listFleets',
    method: 'GET',
    path: '/fleets',
    summary:
      "Fleets with their members' counts, the scaler's last decision and cost, and the work no fleet may run",
    access: 'read',
    reply: r.fleetListReply,
  }),
  getFleet: route({
    name: 'getFleet',
    method: 'GET',
    path: '/fleets/:name',
    summary: 'One fleet and its machines (live ones, and those terminated in the last hour)',
    access: 'read',
    params: fleetName,
    reply: r.fleetDetailReply,
  }),
  fleetHistory: route({
    name: 'fleetHistory',
    method: 'GET',
    path: '/fleets/:name/history',
    summary:
      "The scaler's decisions for a fleet, oldest first: demand, capacity and target over time",
    access: 'read',
    params: fleetName,
    query: z.object({
      since: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
      limit: z.coerce.number().int().min(1).max(1000).default(200),
    }),
    reply: r.fleetHistoryReply,
  }),
  createFleet: route({
    name: 'createFleet',
    method: 'POST',
    path: '/fleets',
    summary: "Define a fleet (its provider's settings are checked by the provider)",
    access: 'admin',
    body: fleetSchema,
    reply: r.fleetReply,
    status: 201,
  }),
  updateFleet: route({
    name: 'updateFleet',
    method: 'PATCH',
    path: '/fleets/:name',
    summary:
      'Change a fleet (a max below its running count drains idle members, it never stops a busy one); paused: false resumes a paused fleet',
    access: 'admin',
    params: fleetName,
    body: fleetChangesSchema,
    reply: r.fleetReply,
  }),
  deleteFleet: route({
    name: 'deleteFleet',
    method: 'DELETE',
    path: '/fleets/:name',
    summary: 'Delete a fleet that has no machine left (set its max to 0 first)',
    access: 'admin',
    params: fleetName,
    reply: r.okReply,
  }),
} as const;
