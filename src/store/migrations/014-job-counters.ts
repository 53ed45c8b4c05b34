import type { Kysely } from 'kysely';
import type { Dialect } from '../sql/dialect.js';

/**
 * Job counters off the job row (issue 11, item 4; `src/store/sql/job-counts.ts` tells the
 * design). On PostgreSQL a claim or a completion adds its change of a job's queued, rendering
 * and completed counts to a row of its own connection (`shard` = the server process id), so
 * claims of one job on several connections never wait for each other's counter write. A
 * job's counts are its row's `n_*` plus the sum of its delta rows; transactions that lock the
 * job `FOR UPDATE` fold the deltas into the row. SQLite (one writer) keeps writing the job row
 * and never has delta rows; the table exists there too so both read the same way.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('job_count_deltas')
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('shard', 'integer', (c) => c.notNull())
    .addColumn('queued', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('rendering', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('completed', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('job_count_deltas_pk', ['job_id', 'shard'])
    .execute();
}
