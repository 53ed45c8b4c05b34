import type { Kysely } from 'kysely';
import type { Dialect } from '../sql/dialect.js';

/**
 * Fleets (issue 12): their definitions, the machines the scaler launched or adopted, and a
 * per-task count of spot interruptions (kept apart from the error count: an interruption is
 * not the task's fault). The scaler's decisions go to the event log (`fleet.*` events).
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  const real = dialect === 'postgres' ? 'double precision' : 'real';
  await db.schema
    .createTable('fleets')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('provider', 'text', (c) => c.notNull())
    /** The validated definition (JSON), as `fleetSchema` parsed it. */
    .addColumn('definition', 'text', (c) => c.notNull())
    .addColumn('paused_reason', 'text')
    .addColumn('created_at', big, (c) => c.notNull())
    .addColumn('updated_at', big, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('fleet_machines')
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('fleet', 'text', (c) => c.notNull())
    .addColumn('worker', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('capacity', 'text', (c) => c.notNull())
    .addColumn('cost_per_hour', real)
    .addColumn('launched_at', big, (c) => c.notNull())
    .addColumn('registered_at', big)
    .addColumn('terminated_at', big)
    .addColumn('failure', 'text')
    .addPrimaryKeyConstraint('fleet_machines_pk', ['provider', 'id'])
    .execute();
  await db.schema
    .createIndex('fleet_machines_by_fleet')
    .on('fleet_machines')
    .columns(['fleet', 'state'])
    .execute();
  await db.schema
    .createIndex('fleet_machines_by_worker')
    .on('fleet_machines')
    .column('worker')
    .execute();
  await db.schema
    .alterTable('tasks')
    .addColumn('interruptions', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
