import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../sql/dialect.js';

/** The first schema. Written with Kysely's schema builder so both dialects share it. */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  const serial = dialect === 'postgres' ? 'bigserial' : 'integer';
  const text = 'text' as const;
  const int = 'integer' as const;
  const notNull0 = <T extends { notNull(): T; defaultTo(v: unknown): T }>(c: T) =>
    c.notNull().defaultTo(0);
  const notNullEmpty = <T extends { notNull(): T; defaultTo(v: unknown): T }>(c: T) =>
    c.notNull().defaultTo('');

  await db.schema
    .createTable('jobs')
    .addColumn('id', text, (c) => c.primaryKey())
    .addColumn('name', text, (c) => c.notNull())
    .addColumn('batch_name', text, notNullEmpty)
    .addColumn('user_name', text, notNullEmpty)
    .addColumn('machine_name', text, notNullEmpty)
    .addColumn('department', text, notNullEmpty)
    .addColumn('comment', text, notNullEmpty)
    .addColumn('plugin', text, (c) => c.notNull())
    .addColumn('plugin_info', text, (c) => c.notNull())
    .addColumn('frames', text, (c) => c.notNull())
    .addColumn('frame_count', int, (c) => c.notNull())
    .addColumn('task_count', int, (c) => c.notNull())
    .addColumn('chunk_size', int, (c) => c.notNull())
    .addColumn('priority', int, (c) => c.notNull())
    .addColumn('pool', text, (c) => c.notNull())
    .addColumn('secondary_pool', text, notNullEmpty)
    .addColumn('grp', text, (c) => c.notNull())
    .addColumn('machine_limit', int, notNull0)
    .addColumn('allow_list', text, (c) => c.notNull())
    .addColumn('deny_list', text, (c) => c.notNull())
    .addColumn('limits', text, (c) => c.notNull())
    .addColumn('regions', text, (c) => c.notNull())
    .addColumn('frame_dependent', int, notNull0)
    .addColumn('output_dirs', text, (c) => c.notNull())
    .addColumn('output_files', text, (c) => c.notNull())
    .addColumn('extra_info', text, (c) => c.notNull())
    .addColumn('environment', text, (c) => c.notNull())
    .addColumn('initial_state', text, (c) => c.notNull())
    .addColumn('task_timeout_s', int, notNull0)
    .addColumn('task_retries', int, notNull0)
    .addColumn('job_error_limit', int, notNull0)
    .addColumn('bad_worker_errors', int, notNull0)
    .addColumn('on_complete', text, (c) => c.notNull())
    .addColumn('event_opt_ins', text, (c) => c.notNull())
    .addColumn('state', text, (c) => c.notNull())
    .addColumn('pending_reason', text, notNullEmpty)
    .addColumn('n_pending', int, notNull0)
    .addColumn('n_queued', int, notNull0)
    .addColumn('n_rendering', int, notNull0)
    .addColumn('n_completed', int, notNull0)
    .addColumn('n_failed', int, notNull0)
    .addColumn('n_suspended', int, notNull0)
    .addColumn('error_count', int, notNull0)
    .addColumn('submitted_at', big, (c) => c.notNull())
    .addColumn('started_at', big)
    .addColumn('finished_at', big)
    .execute();
  // Only jobs with dispatchable work: the claim query never walks drained or finished jobs
  // (DESIGN.md: probing drained jobs cut the claim ceiling from ≈13.8k to ≈10.4k/s).
  await db.schema
    .createIndex('jobs_dispatchable')
    .on('jobs')
    .columns(['priority', 'submitted_at', 'id'])
    .where(sql.ref('n_queued'), '>', 0)
    .where(sql.ref('state'), 'in', ['queued', 'rendering'])
    .execute();
  await db.schema
    .createIndex('jobs_by_state')
    .on('jobs')
    .columns(['state', 'submitted_at'])
    .execute();
  await db.schema.createIndex('jobs_by_submitted').on('jobs').column('submitted_at').execute();

  await db.schema
    .createTable('tasks')
    .addColumn('job_id', text, (c) => c.notNull())
    .addColumn('idx', int, (c) => c.notNull())
    .addColumn('frames', text, (c) => c.notNull())
    .addColumn('first_frame', int, (c) => c.notNull())
    .addColumn('last_frame', int, (c) => c.notNull())
    .addColumn('state', text, (c) => c.notNull())
    .addColumn('worker', text)
    .addColumn('lease', text)
    .addColumn('lease_expires_at', big)
    .addColumn('held_limits', text, (c) => c.notNull().defaultTo('[]'))
    .addColumn('attempt', int, notNull0)
    .addColumn('error_count', int, notNull0)
    .addColumn('progress', 'real', notNull0)
    .addColumn('status', text, notNullEmpty)
    .addColumn('log_bytes', int, notNull0)
    .addColumn('log_seq', int, notNull0)
    .addColumn('started_at', big)
    .addColumn('finished_at', big)
    .addPrimaryKeyConstraint('tasks_pk', ['job_id', 'idx'])
    .execute();
  await db.schema
    .createIndex('tasks_by_state')
    .on('tasks')
    .columns(['job_id', 'state', 'idx'])
    .execute();
  await db.schema.createIndex('tasks_by_lease').on('tasks').column('lease').unique().execute();
  await db.schema
    .createIndex('tasks_rendering')
    .on('tasks')
    .columns(['lease_expires_at'])
    .where(sql.ref('state'), '=', 'rendering')
    .execute();
  await db.schema
    .createIndex('tasks_by_worker')
    .on('tasks')
    .columns(['worker'])
    .where(sql.ref('state'), '=', 'rendering')
    .execute();

  await db.schema
    .createTable('job_dependencies')
    .addColumn('job_id', text, (c) => c.notNull())
    .addColumn('depends_on', text, (c) => c.notNull())
    .addPrimaryKeyConstraint('job_dependencies_pk', ['job_id', 'depends_on'])
    .execute();
  await db.schema
    .createIndex('job_dependencies_rev')
    .on('job_dependencies')
    .column('depends_on')
    .execute();

  await db.schema
    .createTable('job_worker_errors')
    .addColumn('job_id', text, (c) => c.notNull())
    .addColumn('worker', text, (c) => c.notNull())
    .addColumn('errors', int, notNull0)
    .addPrimaryKeyConstraint('job_worker_errors_pk', ['job_id', 'worker'])
    .execute();

  await db.schema
    .createTable('workers')
    .addColumn('name', text, (c) => c.primaryKey())
    .addColumn('region', text, (c) => c.notNull())
    .addColumn('pools', text, (c) => c.notNull())
    .addColumn('groups', text, (c) => c.notNull())
    .addColumn('slots', int, (c) => c.notNull())
    .addColumn('capabilities', text, (c) => c.notNull())
    .addColumn('state', text, (c) => c.notNull())
    .addColumn('enabled', int, (c) => c.notNull().defaultTo(1))
    .addColumn('version', text, notNullEmpty)
    .addColumn('registered_at', big, (c) => c.notNull())
    .addColumn('last_seen_at', big, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('limits')
    .addColumn('name', text, (c) => c.primaryKey())
    .addColumn('max', int, (c) => c.notNull())
    .addColumn('in_use', int, notNull0)
    .execute();

  await db.schema
    .createTable('task_logs')
    .addColumn('id', serial, (c) =>
      dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
    )
    .addColumn('job_id', text, (c) => c.notNull())
    .addColumn('idx', int, (c) => c.notNull())
    .addColumn('attempt', int, (c) => c.notNull())
    .addColumn('seq', int, (c) => c.notNull())
    .addColumn('at', big, (c) => c.notNull())
    .addColumn('stream', text, (c) => c.notNull())
    .addColumn('text', text, (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('task_logs_by_task')
    .on('task_logs')
    .columns(['job_id', 'idx', 'attempt', 'seq'])
    .execute();

  await db.schema
    .createTable('events')
    .addColumn('seq', serial, (c) =>
      dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
    )
    .addColumn('at', big, (c) => c.notNull())
    .addColumn('type', text, (c) => c.notNull())
    .addColumn('job_id', text)
    .addColumn('task_idx', int)
    .addColumn('worker', text)
    .addColumn('data', text, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('events_by_job').on('events').columns(['job_id', 'seq']).execute();

  await db.schema
    .createTable('meta')
    .addColumn('key', text, (c) => c.primaryKey())
    .addColumn('value', text, (c) => c.notNull())
    .execute();
}
