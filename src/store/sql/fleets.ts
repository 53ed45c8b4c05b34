import type { Kysely, Selectable } from 'kysely';
import { conflict, notFound } from '../../core/errors.js';
import {
  fleetSchema,
  type Fleet,
  type FleetDefinition,
  type FleetMachine,
  type FleetMachineState,
} from '../../core/fleet.js';
import type { FleetStore } from '../fleet-contract.js';
import { recordEvent } from './events.js';
import type { StoreKit } from './kit.js';
import type { Database } from './schema.js';
import type { FleetMachinesTable, FleetsTable } from './schema-fleets.js';
import { isUniqueViolation } from './transient.js';

/** Machines one listing returns at most. */
const MAX_MACHINES = 1000;

function fleetFromRow(row: Selectable<FleetsTable>): Fleet {
  // Parsed again: a definition saved by an older release gets today's defaults.
  const definition = fleetSchema.parse(JSON.parse(row.definition));
  return {
    ...definition,
    pausedReason: row.paused_reason,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function machineFromRow(row: Selectable<FleetMachinesTable>): FleetMachine {
  return {
    id: row.id,
    fleet: row.fleet,
    provider: row.provider,
    worker: row.worker,
    state: row.state as FleetMachineState,
    capacity: row.capacity === 'on-demand' ? 'on-demand' : 'spot',
    costPerHour: row.cost_per_hour === null ? null : Number(row.cost_per_hour),
    launchedAt: Number(row.launched_at),
    registeredAt: row.registered_at === null ? null : Number(row.registered_at),
    terminatedAt: row.terminated_at === null ? null : Number(row.terminated_at),
    failure: row.failure,
  };
}

async function fleetRow(db: Kysely<Database>, name: string) {
  return db.selectFrom('fleets').selectAll().where('name', '=', name).executeTakeFirst();
}

/** Fleets on SQL (see `fleet-contract.ts`). */
export class SqlFleetStore implements FleetStore {
  constructor(private readonly kit: StoreKit) {}

  async createFleet(definition: FleetDefinition): Promise<Fleet> {
    try {
      return await this.kit.tx(async (db, now) => {
        if (await fleetRow(db, definition.name)) throw taken(definition.name);
        await db
          .insertInto('fleets')
          .values({
            name: definition.name,
            provider: definition.provider,
            definition: JSON.stringify(definition),
            paused_reason: null,
            created_at: now,
            updated_at: now,
          })
          .execute();
        await recordEvent(db, now, {
          type: 'fleet.changed',
          data: { fleet: definition.name, action: 'created', provider: definition.provider },
        });
        return fleetFromRow((await fleetRow(db, definition.name))!);
      });
    } catch (err) {
      // Two managers creating one name at once: the primary key decides.
      if (isUniqueViolation(err)) throw taken(definition.name);
      throw err;
    }
  }

  async updateFleet(definition: FleetDefinition, options: { resume?: boolean } = {}) {
    return this.kit.tx(async (db, now) => {
      const row = await fleetRow(db, definition.name);
      if (!row) throw notFound(`fleet ${definition.name}`);
      if (row.provider !== definition.provider) {
        throw conflict(
          `fleet ${definition.name} uses provider ${row.provider}; its provider stays`,
        );
      }
      await db
        .updateTable('fleets')
        .set({
          definition: JSON.stringify(definition),
          updated_at: now,
          ...(options.resume ? { paused_reason: null } : {}),
        })
        .where('name', '=', definition.name)
        .execute();
      await recordEvent(db, now, {
        type: 'fleet.changed',
        data: { fleet: definition.name, action: options.resume ? 'resumed' : 'updated' },
      });
      return fleetFromRow((await fleetRow(db, definition.name))!);
    });
  }

  async deleteFleet(name: string): Promise<void> {
    await this.kit.tx(async (db, now) => {
      if (!(await fleetRow(db, name))) throw notFound(`fleet ${name}`);
      const live = await db
        .selectFrom('fleet_machines')
        .select('id')
        .where('fleet', '=', name)
        .where('state', '!=', 'terminated')
        .executeTakeFirst();
      if (live) {
        throw conflict(
          `fleet ${name} still has machines: set its max to 0 (drover fleet set ${name} --min 0 --standby 0 --max 0) and delete it once they are gone`,
        );
      }
      await db.deleteFrom('fleets').where('name', '=', name).execute();
      await recordEvent(db, now, {
        type: 'fleet.changed',
        data: { fleet: name, action: 'deleted' },
      });
    });
  }

  async fetchFleet(name: string): Promise<Fleet | undefined> {
    const row = await fleetRow(this.kit.db, name);
    return row ? fleetFromRow(row) : undefined;
  }

  async listFleets(): Promise<Fleet[]> {
    const rows = await this.kit.db.selectFrom('fleets').selectAll().orderBy('name').execute();
    return rows.map(fleetFromRow);
  }

  async pauseFleet(name: string, reason: string): Promise<Fleet> {
    return this.kit.tx(async (db, now) => {
      const row = await fleetRow(db, name);
      if (!row) throw notFound(`fleet ${name}`);
      await db
        .updateTable('fleets')
        .set({ paused_reason: reason.slice(0, 1000), updated_at: now })
        .where('name', '=', name)
        .execute();
      await recordEvent(db, now, { type: 'fleet.paused', data: { fleet: name, reason } });
      return fleetFromRow((await fleetRow(db, name))!);
    });
  }

  async recordMachines(
    machines: readonly FleetMachine[],
    event?: { type: 'fleet.launched'; data: Record<string, unknown> },
  ): Promise<FleetMachine[]> {
    if (machines.length === 0) return [];
    return this.kit.tx(async (db, now) => {
      const added: FleetMachine[] = [];
      for (const m of machines) {
        const known = await db
          .selectFrom('fleet_machines')
          .select('id')
          .where('provider', '=', m.provider)
          .where('id', '=', m.id)
          .executeTakeFirst();
        if (known) continue;
        await db
          .insertInto('fleet_machines')
          .values({
            id: m.id,
            provider: m.provider,
            fleet: m.fleet,
            worker: m.worker,
            state: m.state,
            capacity: m.capacity,
            cost_per_hour: m.costPerHour,
            launched_at: m.launchedAt,
            registered_at: m.registeredAt,
            terminated_at: m.terminatedAt,
            failure: m.failure,
          })
          .execute();
        added.push(m);
      }
      if (event && added.length > 0) {
        await recordEvent(db, now, {
          type: event.type,
          data: { ...event.data, machines: added.map((m) => m.id) },
        });
      }
      return added;
    });
  }

  async setMachineState(
    provider: string,
    id: string,
    state: FleetMachineState,
    details: { failure?: string; at?: number } = {},
  ): Promise<FleetMachine | undefined> {
    return this.kit.tx(async (db, now) => {
      const at = details.at ?? now;
      const row = await db
        .updateTable('fleet_machines')
        .set({
          state,
          ...(state === 'running' ? { registered_at: at } : {}),
          ...(state === 'terminated' ? { terminated_at: at } : {}),
          ...(details.failure !== undefined ? { failure: details.failure.slice(0, 1000) } : {}),
        })
        .where('provider', '=', provider)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst();
      return row ? machineFromRow(row) : undefined;
    });
  }

  async listMachines(
    query: { fleet?: string; live?: boolean; since?: number; limit?: number } = {},
  ): Promise<FleetMachine[]> {
    let q = this.kit.db.selectFrom('fleet_machines').selectAll();
    if (query.fleet !== undefined) q = q.where('fleet', '=', query.fleet);
    if (query.live) q = q.where('state', '!=', 'terminated');
    else if (query.since !== undefined) {
      const since = query.since;
      q = q.where((eb) =>
        eb.or([eb('terminated_at', 'is', null), eb('terminated_at', '>=', since)]),
      );
    }
    const rows = await q
      .orderBy('launched_at', 'desc')
      .orderBy('id')
      .limit(Math.min(query.limit ?? MAX_MACHINES, MAX_MACHINES))
      .execute();
    return rows.map(machineFromRow);
  }

  async interruptedQueuedTasks(min: number): Promise<Map<string, number>> {
    const rows = await this.kit.db
      .selectFrom('tasks')
      .select(['job_id', (eb) => eb.fn.countAll<number>().as('n')])
      .where('state', '=', 'queued')
      .where('interruptions', '>=', min)
      .groupBy('job_id')
      .limit(MAX_MACHINES)
      .execute();
    return new Map(rows.map((r) => [r.job_id, Number(r.n)]));
  }
}

function taken(name: string) {
  return conflict(`a fleet is named ${name}: choose another name or change that one`);
}
