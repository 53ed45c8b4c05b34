import type { Kysely } from 'kysely';
import type { Dialect } from '../sql/dialect.js';

/**
 * Event plugins and path mapping: plugin settings, per-consumer event cursors, a job's
 * submission hold (the plugins whose job-submitted handlers must finish before it may be
 * dispatched), per-plugin data on jobs, and path-mapping rules.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  const serial = dialect === 'postgres' ? 'bigserial' : 'integer';
  await db.schema
    .alterTable('jobs')
    .addColumn('held_for', 'text', (c) => c.notNull().defaultTo(''))
    .execute();
  await db.schema
    .alterTable('jobs')
    .addColumn('plugin_data', 'text', (c) => c.notNull().defaultTo('{}'))
    .execute();

  await db.schema
    .createTable('plugin_settings')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('config', 'text', (c) => c.notNull())
    .addColumn('updated_at', big, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('event_cursors')
    .addColumn('consumer', 'text', (c) => c.primaryKey())
    .addColumn('seq', big, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('path_mappings')
    .addColumn('id', serial, (c) =>
      dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
    )
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('replacement', 'text', (c) => c.notNull())
    .addColumn('region', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('os', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('case_sensitive', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
}
