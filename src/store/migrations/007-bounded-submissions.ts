import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../sql/dialect.js';

/**
 * Bounded work per request (issue 10):
 * - `job_creations`: a large job's tasks are inserted in short transactions before its job row
 *   exists; this row says a creation is under way (and when it last made progress), so house
 *   keeping can remove the tasks of one whose manager died mid-insert.
 * - `idempotency_keys`: a submission's `Idempotency-Key`, per principal, names the job it
 *   created (and a hash of the body, so a key reused for another body is refused).
 * - `jobs.deleted_at` / `jobs.tasks_purged_at`: when a job was deleted, and when house keeping
 *   removed its tasks and logs; the partial index finds the deleted jobs still to purge
 *   without walking every deleted job ever.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  await db.schema
    .createTable('job_creations')
    .addColumn('job_id', 'text', (c) => c.primaryKey())
    .addColumn('started_at', big, (c) => c.notNull())
    .addColumn('touched_at', big, (c) => c.notNull())
    .addColumn('abandoned', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('idempotency_keys')
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('body_hash', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['owner', 'key'])
    .execute();
  await db.schema
    .createIndex('idempotency_keys_by_age')
    .on('idempotency_keys')
    .column('created_at')
    .execute();
  await db.schema
    .createIndex('idempotency_keys_by_job')
    .on('idempotency_keys')
    .column('job_id')
    .execute();

  await db.schema.alterTable('jobs').addColumn('deleted_at', big).execute();
  await db.schema.alterTable('jobs').addColumn('tasks_purged_at', big).execute();
  await db.schema
    .createIndex('jobs_deleted_unpurged')
    .on('jobs')
    // `state` first: SQLite then prefers it to `jobs_by_state`, which holds every deleted job.
    .columns(['state', 'id'])
    .where(sql.ref('state'), '=', 'deleted')
    .where(sql.ref('tasks_purged_at'), 'is', null)
    .execute();
}
