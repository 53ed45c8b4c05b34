import { sql, type Kysely, type Selectable } from 'kysely';
import { parseFrameList } from '../../core/frames.js';
import { activeJobState } from '../../core/job-state.js';
import type { JobSubmission } from '../../core/job-spec.js';
import type { TaskCounts } from '../../core/types.js';
import { forUpdate, type Dialect } from './dialect.js';
import { recordEvent } from './events.js';
import { addCountDeltas, dropCountDeltas, foldCountDeltas } from './job-counts.js';
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
  await dropCountDeltas(db, jobId);
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

/** A job's row with its counters current (the row's plus its deltas: `job-counts.ts`). */
export async function fetchJobRow(db: Db, id: string): Promise<Selectable<JobsTable> | undefined> {
  const row = await db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  return row && (await addCountDeltas(db, [row]))[0];
}

/**
 * Reads a job row and locks it until the transaction ends (PostgreSQL; see `forUpdate`).
 * `FOR UPDATE` waits for the claims and completions in flight on the job (they hold it
 * key-shared, see `dispatch.ts`); `noKeyUpdate` does not, and only orders this transaction
 * with others that change the job's counters or take turns on it.
 */
export async function lockJobRow(
  db: Db,
  dialect: Dialect,
  id: string,
  mode: 'update' | 'noKeyUpdate' = 'update',
): Promise<Selectable<JobsTable> | undefined> {
  const q = db.selectFrom('jobs').selectAll().where('id', '=', id);
  if (mode === 'noKeyUpdate') {
    return (dialect === 'postgres' ? q.forNoKeyUpdate() : q).executeTakeFirst();
  }
  const row = await forUpdate(q, dialect).executeTakeFirst();
  // No claim or completion of the job is in flight now: its counter deltas fold into the row.
  return row && ((await foldCountDeltas(db, dialect, id)) ?? row);
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

/** How one dependency of a job stands. */
export type DependencyStanding = 'done' | 'waiting' | 'failed' | 'deleted' | 'archived' | 'missing';

interface DependencyRow {
  depends_on: string;
  state: string | null;
  n_completed: number | string | bigint | null;
  task_count: number | string | bigint | null;
}

/**
 * Where one dependency stands for a job with the given resume flags. A dependency whose
 * every task completed is done, whatever happened to it since (deleted or archived by its
 * on-complete action included). One that failed, or was deleted or archived — or is gone
 * from the store — before it completed cannot complete by itself: it counts as done only
 * when the job resumes on it (Deadline's ResumeOnFailedDependencies /
 * ResumeOnDeletedDependencies); otherwise the job waits, and says so.
 */
function standing(
  r: DependencyRow,
  resumeOnFailed: boolean,
  resumeOnDeleted: boolean,
): DependencyStanding {
  if (r.task_count === null || r.state === null) return resumeOnDeleted ? 'done' : 'missing';
  if (num(r.n_completed) >= num(r.task_count)) return 'done';
  if (r.state === 'failed') return resumeOnFailed ? 'done' : 'failed';
  if (r.state === 'deleted' || r.state === 'archived') {
    return resumeOnDeleted ? 'done' : r.state;
  }
  return 'waiting';
}

/** The resume flags of a job, from its submission when its row is not written yet. */
export type ResumeFlags = Pick<
  JobSubmission,
  'resumeOnFailedDependencies' | 'resumeOnDeletedDependencies'
>;

/**
 * A job's dependencies that are not done yet (see `standing`), by id. The job's resume
 * flags are read from its row, or taken from `flags` (a job being created has no row yet).
 */
export async function dependencyStandings(
  db: Db,
  jobId: string,
  flags?: ResumeFlags,
): Promise<Map<string, DependencyStanding>> {
  const job = flags
    ? {
        resume_on_failed_deps: flags.resumeOnFailedDependencies ? 1 : 0,
        resume_on_deleted_deps: flags.resumeOnDeletedDependencies ? 1 : 0,
      }
    : await db
        .selectFrom('jobs')
        .select(['resume_on_failed_deps', 'resume_on_deleted_deps'])
        .where('id', '=', jobId)
        .executeTakeFirst();
  const rows = await db
    .selectFrom('job_dependencies as d')
    .leftJoin('jobs as j', 'j.id', 'd.depends_on')
    .select(['d.depends_on', 'j.state', 'j.n_completed', 'j.task_count'])
    .where('d.job_id', '=', jobId)
    .orderBy('d.depends_on')
    .execute();
  const resumeOnFailed = num(job?.resume_on_failed_deps ?? 0) === 1;
  const resumeOnDeleted = num(job?.resume_on_deleted_deps ?? 0) === 1;
  const out = new Map<string, DependencyStanding>();
  for (const r of rows) {
    const s = standing(r, resumeOnFailed, resumeOnDeleted);
    if (s !== 'done') out.set(r.depends_on, s);
  }
  return out;
}

/** The dependencies a job still waits for (none: it may render). */
export async function unmetDependencies(db: Db, jobId: string): Promise<string[]> {
  return [...(await dependencyStandings(db, jobId)).keys()];
}

const CANNOT_COMPLETE = / and cannot complete \(resumeOn(Failed|Deleted)Dependencies is off\)/;

/**
 * The pending reason of a job waiting for its dependencies: `waiting for dependencies`
 * while each of them may still complete, or, when one cannot (it failed, or was deleted
 * before completing, and the job does not resume on that), a reason naming it and the flag
 * that would let the job go — so nobody waits for a job that will never come.
 */
export function dependencyPendingReason(unmet: ReadonlyMap<string, DependencyStanding>): string {
  const stuck = [...unmet].filter(([, s]) => s !== 'waiting');
  if (stuck.length === 0) return WAITING_FOR_DEPENDENCIES;
  const [id, s] = stuck[0]!;
  const what =
    s === 'failed'
      ? 'failed'
      : s === 'missing'
        ? 'no longer exists'
        : `was ${s} before it completed`;
  const flag = s === 'failed' ? 'resumeOnFailedDependencies' : 'resumeOnDeletedDependencies';
  const more = stuck.length > 1 ? ` (and ${stuck.length - 1} more)` : '';
  return `dependency ${id} ${what} and cannot complete (${flag} is off)${more}`;
}

/** The pending reason of a whole-job dependent waiting now (see `dependencyPendingReason`). */
export async function pendingReasonForDependencies(db: Db, jobId: string): Promise<string> {
  return dependencyPendingReason(await dependencyStandings(db, jobId));
}

/** Whether a pending job waits for its dependencies (not held by a user or a plugin). */
export function isWaitingForDependencies(pendingReason: string): boolean {
  return (
    pendingReason === WAITING_FOR_DEPENDENCIES ||
    (pendingReason.startsWith('dependency ') && CANNOT_COMPLETE.test(pendingReason))
  );
}

/**
 * Re-judges the jobs that depend on `jobId` after it completed, failed, was deleted,
 * archived or requeued: a whole-job dependent whose dependencies are all done is released; one
 * that still waits gets a pending reason naming a dependency that cannot complete, with a
 * `job.pended` event when the reason changes; frame-dependent ones get their tasks refreshed.
 */
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
    if (dep.state !== 'pending' || !isWaitingForDependencies(dep.pending_reason)) continue;
    const unmet = await dependencyStandings(db, dep.id);
    if (unmet.size > 0) {
      const reason = dependencyPendingReason(unmet);
      if (reason === dep.pending_reason) continue;
      await db
        .updateTable('jobs')
        .set({ pending_reason: reason })
        .where('id', '=', dep.id)
        .execute();
      await recordEvent(db, now, {
        type: 'job.pended',
        jobId: dep.id,
        data: { reason, waitingFor: [...unmet.keys()] },
      });
      continue;
    }
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

/** Jobs one house-keeping round settles at most (`settleIdleRendering`). */
const IDLE_RENDERING_PAGE = 100;

/**
 * PostgreSQL house keeping: settles jobs left rendering with no task rendering, to queued or
 * completed (with what completion brings). The hot path settles them itself after COMMIT
 * (`lagsCounters` in `dispatch.ts`); this catches a manager that died between the two, and a
 * claim in flight that kept a completion from queuing the job and then rendered nothing.
 * Reads the `jobs_by_state` and `tasks_by_state` indexes only.
 */
export async function settleIdleRendering(db: Db, dialect: Dialect, now: number): Promise<void> {
  if (dialect !== 'postgres') return;
  const idle = await db
    .selectFrom('jobs as j')
    .select('j.id')
    .where('j.state', '=', 'rendering')
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('tasks as t')
            .select('t.idx')
            .whereRef('t.job_id', '=', 'j.id')
            .where('t.state', '=', 'rendering'),
        ),
      ),
    )
    .orderBy('j.id')
    .limit(IDLE_RENDERING_PAGE)
    .execute();
  for (const { id } of idle) await settleLockedJob(db, dialect, now, id);
}

/** Locks the job `FOR UPDATE` (waiting for its calls in flight), then settles it. */
export async function settleLockedJob(
  db: Db,
  dialect: Dialect,
  now: number,
  jobId: string,
): Promise<void> {
  await lockJobRow(db, dialect, jobId);
  await settleJob(db, dialect, now, jobId);
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
    // Not FOR UPDATE: this transaction may hold the dependent key-shared (it claimed from it
    // too), and so may another one doing the same; upgrading both would deadlock. The refresh
    // re-checks each task's state in its UPDATE and counts by what it changed.
    await lockJobRow(db, dialect, dep.id, 'noKeyUpdate');
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
  // Dependencies the job resumes on (failed or deleted, with its flag on) hold nothing back.
  const deps = await dependencyStandings(db, jobId);
  // Frames not yet completed, per dependency.
  const blocked: Array<Set<number>> = [];
  for (const depends_on of deps.keys()) {
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
