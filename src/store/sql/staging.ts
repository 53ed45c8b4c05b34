import { sql, type Kysely } from 'kysely';
import { DroverError, conflict } from '../../core/errors.js';
import type { IdempotencyKey } from '../contract.js';
import type { Database } from './schema.js';

type Db = Kysely<Database>;

/*
 * Bounded work per request: the SQL of staged job creation, idempotency keys and house
 * keeping's purge. Each function runs in the caller's (short) transaction.
 *
 * A large job is created in steps (`SqlStore.createJob`): a first transaction records a
 * `job_creations` row, then its tasks go in batch by batch in transactions of ≈50 ms, then a
 * last transaction deletes the creation row and writes the job row and the job.submitted
 * event. Until that commit there is no job row, and everything that lists, shows or
 * dispatches work starts from a job row: the job is never seen, nor dispatched, half made.
 * A manager that dies mid-way leaves a creation row and tasks no job owns; the creation stops
 * being touched, house keeping marks it abandoned and deletes its tasks.
 */

/** A creation that made no progress for this long is abandoned (its manager died). */
export const ABANDON_CREATION_AFTER_MS = 2 * 60_000;

/** Refused: a staged creation was abandoned (house keeping or an error) before it finished. */
export function creationAbandoned(jobId: string): DroverError {
  return new DroverError(
    'unavailable',
    `the creation of job ${jobId} was abandoned before it finished (nothing was created); submit again`,
  );
}

/**
 * Reserves `key` for `jobId`, or returns the job an earlier submission with it named. A key
 * older than `ttlMs` counts as unused (house keeping deletes it later). Race-safe: the
 * primary key (owner, key) admits one row; on PostgreSQL a concurrent insert waits for the
 * first to commit and then finds its row.
 */
export async function reserveKey(
  db: Db,
  now: number,
  ttlMs: number,
  k: IdempotencyKey,
  jobId: string,
): Promise<string | undefined> {
  const values = {
    owner: k.owner,
    key: k.key,
    body_hash: k.bodyHash,
    job_id: jobId,
    created_at: now,
  };
  const taken = await db
    .insertInto('idempotency_keys')
    .values(values)
    .onConflict((oc) =>
      oc
        .columns(['owner', 'key'])
        .doUpdateSet({ body_hash: k.bodyHash, job_id: jobId, created_at: now })
        .where('idempotency_keys.created_at', '<', now - ttlMs),
    )
    .returning('job_id')
    .executeTakeFirst();
  if (taken?.job_id === jobId) return undefined;
  const prior = await db
    .selectFrom('idempotency_keys')
    .select(['job_id', 'body_hash'])
    .where('owner', '=', k.owner)
    .where('key', '=', k.key)
    .executeTakeFirstOrThrow();
  if (prior.body_hash !== k.bodyHash) {
    throw conflict(
      `Idempotency-Key "${k.key}" was already used for a different submission (job ${prior.job_id}); send a new key for a new job`,
    );
  }
  return prior.job_id;
}

/** Forgets a key that names a job which will never exist (its creation was abandoned). */
export async function releaseKey(db: Db, k: IdempotencyKey, jobId: string): Promise<void> {
  await db
    .deleteFrom('idempotency_keys')
    .where('owner', '=', k.owner)
    .where('key', '=', k.key)
    .where('job_id', '=', jobId)
    .execute();
}

export async function startCreation(db: Db, now: number, jobId: string): Promise<void> {
  await db
    .insertInto('job_creations')
    .values({ job_id: jobId, started_at: now, touched_at: now, abandoned: 0 })
    .execute();
}

/** Records progress; throws when the creation was abandoned meanwhile (nothing to add to). */
export async function touchCreation(db: Db, now: number, jobId: string): Promise<void> {
  const r = await db
    .updateTable('job_creations')
    .set({ touched_at: now })
    .where('job_id', '=', jobId)
    .where('abandoned', '=', 0)
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) throw creationAbandoned(jobId);
}

/** Ends a creation in its last transaction; throws when it was abandoned meanwhile. */
export async function finishCreation(db: Db, jobId: string): Promise<void> {
  const r = await db
    .deleteFrom('job_creations')
    .where('job_id', '=', jobId)
    .where('abandoned', '=', 0)
    .executeTakeFirst();
  if (Number(r.numDeletedRows) !== 1) throw creationAbandoned(jobId);
}

/** Gives a creation up (it failed): house keeping deletes its tasks; its keys go now. */
export async function abandonCreation(db: Db, jobId: string): Promise<void> {
  await db.updateTable('job_creations').set({ abandoned: 1 }).where('job_id', '=', jobId).execute();
  await db.deleteFrom('idempotency_keys').where('job_id', '=', jobId).execute();
}

/** Where a creation stands: running, abandoned, or none (finished, or never staged). */
export async function creationState(
  db: Db,
  now: number,
  jobId: string,
): Promise<'running' | 'abandoned' | 'none'> {
  const row = await db
    .selectFrom('job_creations')
    .select(['abandoned', 'touched_at'])
    .where('job_id', '=', jobId)
    .executeTakeFirst();
  if (!row) return 'none';
  if (Number(row.abandoned) === 1) return 'abandoned';
  return Number(row.touched_at) < now - ABANDON_CREATION_AFTER_MS ? 'abandoned' : 'running';
}

/**
 * Marks creations silent for `ABANDON_CREATION_AFTER_MS` abandoned (conditionally: one
 * touched meanwhile keeps going) and forgets their keys; returns their job ids.
 */
export async function abandonStaleCreations(db: Db, now: number): Promise<string[]> {
  const stale = await db
    .updateTable('job_creations')
    .set({ abandoned: 1 })
    .where('abandoned', '=', 0)
    .where('touched_at', '<', now - ABANDON_CREATION_AFTER_MS)
    .returning('job_id')
    .execute();
  const ids = stale.map((r) => r.job_id);
  if (ids.length > 0) await db.deleteFrom('idempotency_keys').where('job_id', 'in', ids).execute();
  return ids;
}

/** One abandoned creation (or none) whose tasks are still to delete. */
export async function nextAbandonedCreation(db: Db): Promise<string | undefined> {
  const row = await db
    .selectFrom('job_creations')
    .select('job_id')
    .where('abandoned', '=', 1)
    .orderBy('job_id')
    .limit(1)
    .executeTakeFirst();
  return row?.job_id;
}

export async function dropCreation(db: Db, jobId: string): Promise<void> {
  await db.deleteFrom('job_creations').where('job_id', '=', jobId).execute();
  await db.deleteFrom('idempotency_keys').where('job_id', '=', jobId).execute();
}

/**
 * Deletes up to `limit` of a job's tasks; returns how many. By primary key ranges (the
 * subquery reads the first `limit` keys of the job), so each call is one bounded statement.
 */
export async function deleteTaskBatch(db: Db, jobId: string, limit: number): Promise<number> {
  const r = await db
    .deleteFrom('tasks')
    .where('job_id', '=', jobId)
    .where('idx', 'in', (eb) =>
      eb.selectFrom('tasks').select('idx').where('job_id', '=', jobId).orderBy('idx').limit(limit),
    )
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}

/** Deletes up to `limit` of a job's task log chunks; returns how many. */
export async function deleteLogBatch(db: Db, jobId: string, limit: number): Promise<number> {
  const r = await db
    .deleteFrom('task_logs')
    .where('id', 'in', (eb) =>
      eb.selectFrom('task_logs').select('id').where('job_id', '=', jobId).limit(limit),
    )
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}

/**
 * Deleted jobs whose tasks are due for purging: deleted before `before` (by a user:
 * `deleted_at`; by an on-complete action: when it finished, which is when it was deleted)
 * and not purged yet. Reads the small partial index `jobs_deleted_unpurged`.
 */
export async function deletedJobsToPurge(db: Db, before: number, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom('jobs')
    .select('id')
    .where('state', '=', sql.lit('deleted'))
    .where('tasks_purged_at', 'is', null)
    .where(sql<number>`coalesce(deleted_at, finished_at, submitted_at)`, '<', before)
    .orderBy('id')
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

/** A deleted job whose tasks and logs are gone: marked, with its bad-worker records removed. */
export async function markJobPurged(db: Db, now: number, jobId: string): Promise<void> {
  await db
    .updateTable('jobs')
    .set({ tasks_purged_at: now })
    .where('id', '=', jobId)
    .where('state', '=', 'deleted')
    .execute();
  await db.deleteFrom('job_worker_errors').where('job_id', '=', jobId).execute();
}

/** Deletes about `limit` keys created before `before` (the oldest first); returns how many. */
export async function deleteExpiredKeys(db: Db, before: number, limit: number): Promise<number> {
  const oldest = await db
    .selectFrom('idempotency_keys')
    .select('created_at')
    .where('created_at', '<', before)
    .orderBy('created_at')
    .limit(limit)
    .execute();
  const upTo = oldest[oldest.length - 1]?.created_at;
  if (upTo === undefined) return 0;
  const r = await db
    .deleteFrom('idempotency_keys')
    .where('created_at', '<', before)
    .where('created_at', '<=', upTo)
    .executeTakeFirst();
  return Number(r.numDeletedRows);
}
