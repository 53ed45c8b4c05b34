import { sql, type Kysely, type Selectable } from 'kysely';
import type { Dialect } from './dialect.js';
import { num } from './rows.js';
import type { Database, JobsTable } from './schema.js';

/**
 * A job's task counters without a hot row (issue 11, item 4).
 *
 * The counters are the job row's `n_*` columns plus, on PostgreSQL, the job's rows in
 * `job_count_deltas` (migration 014). A claim and a completion — the hot path, `dispatch.ts`
 * — change only the queued, rendering and completed counts, and on PostgreSQL they add that
 * change to the delta row of their own connection (`shard` = `pg_backend_pid()`), never to
 * the job row: claims of one job on 16 connections or 3 managers write 16 or 48 different
 * rows and do not queue behind one row lock held to COMMIT. Every other change of a job's
 * tasks (user actions, failures, requeues, lease expiry) locks the job `FOR UPDATE` first
 * (`lockJobRow`), which waits for the claims and completions in flight (they hold the job
 * `FOR KEY SHARE`); under that lock no delta row of the job is being written, so the deltas
 * are folded into the row (`foldCountDeltas`) and the row alone is exact from there on.
 *
 * Exactness of what is derived from the counters (the job's queued/rendering/completed state,
 * its completion and what follows it) is kept by the hot path itself: a job's first claim
 * and a completion that frame-dependent jobs wait on take turns on the job (`FOR NO KEY
 * UPDATE`) and read the counters after their turn; a completion without a claim of the same
 * job settles the job right after its COMMIT under `FOR UPDATE`; the other calls move no
 * state. See the top of `dispatch.ts`.
 *
 * Readers add the deltas (`addCountDeltas`): the job list and detail, `fetchJobRow`.
 * The job row's `n_queued` is never below the true count (deltas only lower it), so the
 * partial index of dispatchable jobs (`n_queued > 0`) still holds every job with queued tasks.
 * SQLite runs one writer at a time: its hot path writes the job row, and it has no deltas.
 */

type Db = Kysely<Database>;

interface Counted {
  id: string;
  n_queued: number;
  n_rendering: number;
  n_completed: number;
}

interface DeltaSum {
  job_id: string;
  queued: number | string | null;
  rendering: number | string | null;
  completed: number | string | null;
}

/** Adds each job's delta rows to its row's counters (in place; returns the rows). */
export async function addCountDeltas<T extends Counted>(db: Db, rows: T[]): Promise<T[]> {
  if (rows.length === 0) return rows;
  const ids = rows.map((r) => r.id);
  const sums = await sql<DeltaSum>`select job_id, sum(queued) as queued,
      sum(rendering) as rendering, sum(completed) as completed
    from job_count_deltas where job_id in (${sql.join(ids)}) group by job_id`.execute(db);
  if (sums.rows.length === 0) return rows;
  const byId = new Map(sums.rows.map((s) => [s.job_id, s]));
  for (const row of rows) {
    const s = byId.get(row.id);
    if (!s) continue;
    row.n_queued = num(row.n_queued) + num(s.queued);
    row.n_rendering = num(row.n_rendering) + num(s.rendering);
    row.n_completed = num(row.n_completed) + num(s.completed);
  }
  return rows;
}

/**
 * Folds a job's delta rows into its row and returns the row (undefined when there were none).
 * The caller holds the job `FOR UPDATE` (no claim or completion of it is in flight) or knows
 * that no other transaction has an uncommitted delta of it (every task of the job completed).
 */
export async function foldCountDeltas(
  db: Db,
  dialect: Dialect,
  jobId: string,
): Promise<Selectable<JobsTable> | undefined> {
  if (dialect !== 'postgres') return undefined;
  const r = await sql<Selectable<JobsTable>>`with d as (
      delete from job_count_deltas where job_id = ${jobId}
      returning queued, rendering, completed)
    update jobs set n_queued = n_queued + (select coalesce(sum(queued), 0) from d),
      n_rendering = n_rendering + (select coalesce(sum(rendering), 0) from d),
      n_completed = n_completed + (select coalesce(sum(completed), 0) from d)
    where id = ${jobId} and exists (select 1 from d)
    returning *`.execute(db);
  return r.rows[0];
}

/** Drops a job's delta rows (its counters were just recounted from its tasks). */
export async function dropCountDeltas(db: Db, jobId: string): Promise<void> {
  await sql`delete from job_count_deltas where job_id = ${jobId}`.execute(db);
}
