import type { Kysely } from 'kysely';

/**
 * Where an attempt's trimmed log was cut: the sequence number of its marker line (0 = not
 * trimmed). A log past its bound keeps its head and its latest tail; the marker between them
 * says how much was dropped, and appends drop the oldest tail lines after it.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('tasks')
    .addColumn('log_trim_seq', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
