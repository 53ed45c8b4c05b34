import type { Kysely } from 'kysely';

/**
 * The number of the last log batch the manager took for a task's current attempt: a worker
 * numbers its batches per lease, so one sent again (a retry after a lost reply, a spooled
 * batch delivered again after a crash) is recognised and not logged twice.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('tasks')
    .addColumn('log_batch', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
