import type { Kysely } from 'kysely';
import type { Dialect } from '../sql/dialect.js';

/**
 * Leader leases: several managers share one PostgreSQL farm; a role (house keeping, one event
 * plugin's consumer) is held by one manager at a time until its lease runs out.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  await db.schema
    .createTable('leases')
    .addColumn('role', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at', big, (c) => c.notNull())
    .execute();
}
