import type { Kysely } from 'kysely';
import type { Dialect } from '../sql/dialect.js';

/** Reserved for the fleets change (filled in by the work that needs it). */
export async function up(_db: Kysely<unknown>, _dialect: Dialect): Promise<void> {}
