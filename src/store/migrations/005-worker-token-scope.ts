import type { Kysely } from 'kysely';

/**
 * Worker tokens name the workers they may act as (`workers`, a pattern where `*` matches
 * any run of characters). Tokens made before this migration keep acting as any worker.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('tokens')
    .addColumn('workers', 'text', (c) => c.notNull().defaultTo('*'))
    .execute();
}
