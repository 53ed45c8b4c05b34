import { sql, type Kysely, type Selectable } from 'kysely';
import { parseFrameList } from '../../core/frames.js';
import { activeJobState } from '../../core/job-state.js';
import type { TaskCounts } from '../../core/types.js';
import { forUpdate, type Dialect } from './dialect.js';
import { recordEvent } from './events.js';
import { countsOf, json, num } from './rows.js';
import type { Database, JobsTable } from './schema.js';

/**
 * How a job moves by itself once its tasks change: counters, completion, on-complete
 * actions and the release of jobs that depend on it. Every function here runs inside the
 * caller's transaction.
 *
 * Concurrency (PostgreSQL, READ COMMITTED): a function that reads a job row and writes from
 * what it read runs after its caller locked that row (`lockJobRow`, or an earlier UPDATE of
 * it in the same transaction, e.g. `bumpCounts`). Lock order: a job before its tasks, its
 * tasks before limits, a job before the jobs that depend on it.
 */

export const WAITING_FOR_DEPENDENCIES = 'waiting for dependencies';

type Db = Kysely<Database>;
type CounterName = keyof TaskCounts;
const counterColumn = {
  pending: 'n_pending',
  queued: 'n_queued',
  rendering: 'n_rendering',
  completed: 'n_completed',
  failed: 'n_failed',
  suspended: 'n_suspended',
} as const;

/** Adds deltas to a job's task counters. */
export async function bumpCounts(
  db: Db,
  jobId: string,
  deltas: Partial<Record<CounterName, number>>,
): Promise<void> {
  const set: Record<string, unknown> = {};
  for (const [name, delta] of Object.entries(deltas) as Array<[CounterName, number]>) {
    if (delta === 0) continue;
    const col = counterColumn[name];
    set[col] = sql`${sql.ref(col)} + ${delta}`;
  }
  if (Object.keys(set).length === 0) return;
  await db.updateTable('jobs').set(set).where('id', '=', jobId).execute();
}

/** Recounts a job's tasks by state (after bulk changes). */
export async function recountJob(db: Db, jobId: string): Promise<TaskCounts> {
  const rows = await db
    .selectFrom('tasks')
    .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
    .where('job_id', '=', jobId)
    .groupBy('state')
    .execute();
  const counts: TaskCounts = {
    pending: 0,
    queued: 0,
    rendering: 0,
    completed: 0,
    failed: 0,
    suspended: 0,
  };
  for (const r of rows) counts[r.state as CounterName] = num(r.n);
  await db
    .updateTable('jobs')
    .set({
      n_pending: counts.pending,
      n_queued: counts.queued,
      n_rendering: counts.rendering,
      n_completed: counts.completed,
      n_failed: counts.failed,
      n_suspended: counts.suspended,
    })
    .where('id', '=', jobId)
    .execute();
  return counts;
}

export async function fetchJobRow(db: Db, id: string): Promise<Selectable<JobsTable> | undefined> {
  return db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Reads a job row and locks it until the transaction ends (PostgreSQL; see `forUpdate`). */
export async function lockJobRow(
  db: Db,
  dialect: Dialect,
  id: string,
): Promise<Selectable<JobsTable> | undefined> {
  return forUpdate(
    db.selectFrom('jobs').selectAll().where('id', '=', id),
    dialect,
  ).executeTakeFirst();
}

/**
 * Moves an active job between queued, rendering and completed from its counters; on
 * completion runs the on-complete action and releases the jobs waiting for it.
 */
export async function settleJob(
  db: Db,
  dialect: Dialect,
  now: number,
  jobId: string,
): Promise<void> {
  // The caller holds the job's row lock, so the counters read here are current.
  const row = await fetchJobRow(db, jobId);
  if (!row || (row.state !== 'queued' && row.state !== 'rendering')) return;
  const next = activeJobState(countsOf(row), num(row.task_count));
  if (next === row.state) return;
  if (next !== 'completed') {
    await db.updateTable('jobs').set({ state: next }).where('id', '=', jobId).execute();
    return;
  }
  await db
    .updateTable('jobs')
    .set({ state: 'completed', finished_at: now })
    .where('id', '=', jobId)
    .execute();
  await recordEvent(db, now, { type: 'job.finished', jobId, data: { name: row.name } });
  if (row.on_complete === 'archive' || row.on_complete === 'delete') {
    const state = row.on_complete === 'archive' ? 'archived' : 'deleted';
    await db.updateTable('jobs').set({ state }).where('id', '=', jobId).execute();
    await recordEvent(db, now, {
      type: state === 'archived' ? 'job.archived' : 'job.deleted',
      jobId,
      data: { reason: 'on-complete action' },
    });
  }
  await releaseDependents(db, dialect, now, jobId);
}

/** A dependency is met when every one of its tasks completed, whatever happened to it since. */
export async function unmetDependencies(db: Db, jobId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('job_dependencies as d')
    .leftJoin('jobs as j', 'j.id', 'd.depends_on')
    .select(['d.depends_on', 'j.n_completed', 'j.task_count'])
    .where('d.job_id', '=', jobId)
    .execute();
  return rows
    .filter((r) => r.task_count === null || num(r.n_completed) < num(r.task_count))
    .map((r) => r.depends_on);
}

/** Releases whole-job dependents whose dependencies are all met; refreshes frame-dependent ones. */
export async function releaseDependents(
  db: Db,
  dialect: Dialect,
  now: number,
  jobId: string,
): Promise<void> {
  const ids = await db
    .selectFrom('job_dependencies')
    .select('job_id')
    .where('depends_on', '=', jobId)
    .orderBy('job_id')
    .execute();
  for (const { job_id } of ids) {
    // Locked before its dependencies are checked: two prerequisites finishing at once on two
    // connections would otherwise each see the other unfinished and neither release the job.
    const dep = await lockJobRow(db, dialect, job_id);
    if (!dep) continue;
    if (num(dep.frame_dependent) === 1) {
      await refreshFrameDependentTasks(db, dep.id);
      continue;
    }
    if (dep.state !== 'pending' || dep.pending_reason !== WAITING_FOR_DEPENDENCIES) continue;
    if ((await unmetDependencies(db, dep.id)).length > 0) continue;
    await db
      .updateTable('jobs')
      .set({ state: 'queued', pending_reason: '' })
      .where('id', '=', dep.id)
      .execute();
    await recordEvent(db, now, {
      type: 'job.released',
      jobId: dep.id,
      data: { reason: 'dependencies completed' },
    });
    await settleJob(db, dialect, now, dep.id);
  }
}

/** After a task of `jobId` completes: frame-dependent jobs waiting on it may have work now. */
export async function refreshFrameDependents(
  db: Db,
  dialect: Dialect,
  jobId: string,
): Promise<void> {
  const dependents = await db
    .selectFrom('job_dependencies as d')
    .innerJoin('jobs as j', 'j.id', 'd.job_id')
    .select('j.id')
    .where('d.depends_on', '=', jobId)
    .where('j.frame_dependent', '=', 1)
    .where('j.n_pending', '>', 0)
    .orderBy('j.id')
    .execute();
  for (const dep of dependents) {
    await lockJobRow(db, dialect, dep.id);
    await refreshFrameDependentTasks(db, dep.id);
  }
}

/**
 * For a frame-dependent job, queues each pending task whose frames are completed in every
 * job it depends on (frames a dependency does not render do not hold the task back).
 * Returns how many tasks it queued. The caller holds the job's row lock.
 */
export async function refreshFrameDependentTasks(db: Db, jobId: string): Promise<number> {
  const pending = await db
    .selectFrom('tasks')
    .select(['idx', 'frames', 'first_frame', 'last_frame'])
    .where('job_id', '=', jobId)
    .where('state', '=', 'pending')
    .execute();
  if (pending.length === 0) return 0;
  const deps = await db
    .selectFrom('job_dependencies')
    .select('depends_on')
    .where('job_id', '=', jobId)
    .execute();
  // Frames not yet completed, per dependency.
  const blocked: Array<Set<number>> = [];
  for (const { depends_on } of deps) {
    const open = await db
      .selectFrom('tasks')
      .select('frames')
      .where('job_id', '=', depends_on)
      .where('state', '!=', 'completed')
      .execute();
    blocked.push(new Set(open.flatMap((t) => parseFrameList(t.frames))));
  }
  const ready = pending.filter((t) =>
    parseFrameList(t.frames).every((f) => blocked.every((b) => !b.has(f))),
  );
  if (ready.length === 0) return 0;
  const r = await db
    .updateTable('tasks')
    .set({ state: 'queued' })
    .where('job_id', '=', jobId)
    .where('state', '=', 'pending')
    .where(
      'idx',
      'in',
      ready.map((t) => num(t.idx)),
    )
    .executeTakeFirst();
  // Count what the UPDATE changed, not what was read: the counters stay exact either way.
  const queued = Number(r.numUpdatedRows);
  await bumpCounts(db, jobId, { pending: -queued, queued });
  return queued;
}

export function jsonList(text: string): string[] {
  return json<string[]>(text);
}
