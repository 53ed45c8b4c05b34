import { sql, type Kysely, type Selectable } from 'kysely';
import { leaseLost, notFound } from '../../core/errors.js';
import { parseFrameList } from '../../core/frames.js';
import {
  pickJob,
  type DispatchCandidate,
  type LimitState,
  type WorkerProfile,
} from '../../core/policy.js';
import type { TaskAssignment } from '../../core/types.js';
import type { TaskReport } from '../../core/worker-protocol.js';
import { forUpdateSkipLocked, type Dialect } from './dialect.js';
import { recordEvent } from './events.js';
import {
  bumpCounts,
  fetchJobRow,
  lockJobRow,
  recountJob,
  refreshFrameDependents,
  releaseDependents,
  settleJob,
} from './job-flow.js';
import { stopRendering } from './jobs.js';
import { newLeasePrefix } from './ids.js';
import { releaseLimits, takeLimits } from './limits.js';
import { json, num } from './rows.js';
import type { Database, JobsTable, TasksTable, WorkersTable } from './schema.js';

type Db = Kysely<Database>;

/*
 * Concurrency on PostgreSQL (READ COMMITTED, several connections and managers). Every
 * read-modify-write either is one conditional statement or runs under a row lock, and locks
 * are taken in one order so transactions wait for each other instead of deadlocking:
 *   worker row → job row → task rows → limit rows (sorted by name) → dependent job rows.
 * - A claim locks its job, takes limit units with conditional UPDATEs (`in_use < max`), and
 *   picks the task with `FOR UPDATE SKIP LOCKED`; the UPDATE re-checks `state = 'queued'`.
 * - Everything that ends a task (report, requeue, expiry) locks the job, then changes the
 *   task with an UPDATE that re-checks the lease (and, for expiry, that it is still expired):
 *   the lease is checked in the statement that changes the task.
 * - A worker's own calls (work, heartbeat) start by touching its row, so they run one at a
 *   time and its slot count holds.
 * The combined report-and-claim (`work`) can still lock two jobs in either order; PostgreSQL
 * then aborts one transaction with a deadlock error and `SqlStore` runs it again.
 */

/** Candidate jobs fetched per round of the dispatch query. */
const CANDIDATE_PAGE = 32;

export interface DispatchSettings {
  leaseTtlMs: number;
}

function profileOf(worker: Selectable<WorkersTable>): WorkerProfile {
  return {
    name: worker.name,
    region: worker.region,
    pools: json<string[]>(worker.pools),
    groups: json<string[]>(worker.groups),
  };
}

/**
 * The dispatch query: jobs with queued tasks that this worker's pools and groups serve and
 * whose bad-worker list it is not on, in the worker's order (pool rank, priority, age, id).
 * The rules SQL does not see (regions, allow/deny lists, limits, machine limit) are the
 * policy's (`src/core/policy.ts`), applied page by page until a job qualifies.
 */
async function candidatePage(
  db: Db,
  worker: WorkerProfile,
  offset: number,
): Promise<Array<Selectable<JobsTable>>> {
  const pools = worker.pools;
  const n = pools.length;
  const rank = sql<number>`case ${sql.join(
    [
      ...pools.map((p, i) => sql`when pool = ${p} then ${i}`),
      ...pools.map((p, i) => sql`when secondary_pool = ${p} then ${n + i}`),
    ].concat([sql`when 1 = 0 then 0`]),
    sql` `,
  )} else ${2 * n} end`;
  let q = db
    .selectFrom('jobs as j')
    .selectAll()
    .where('j.n_queued', '>', 0)
    .where('j.state', 'in', ['queued', 'rendering'])
    .where((eb) => {
      const poolOk = [eb('j.pool', 'in', ['none', ''])];
      if (n > 0) {
        poolOk.push(eb('j.pool', 'in', pools), eb('j.secondary_pool', 'in', pools));
      }
      return eb.or(poolOk);
    })
    .where((eb) =>
      worker.groups.length > 0
        ? eb.or([eb('j.grp', 'in', ['none', '']), eb('j.grp', 'in', worker.groups)])
        : eb('j.grp', 'in', ['none', '']),
    )
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('job_worker_errors as e')
            .select(sql`1`.as('one'))
            .whereRef('e.job_id', '=', 'j.id')
            .where('e.worker', '=', worker.name)
            .where('j.bad_worker_errors', '>', 0)
            .whereRef('e.errors', '>=', 'j.bad_worker_errors'),
        ),
      ),
    );
  q = q
    .orderBy(rank)
    .orderBy('j.priority', 'desc')
    .orderBy('j.submitted_at')
    .orderBy('j.id')
    .limit(CANDIDATE_PAGE)
    .offset(offset);
  return q.execute();
}

async function toCandidate(
  db: Db,
  row: Selectable<JobsTable>,
  workerName: string,
): Promise<DispatchCandidate> {
  let renderingWorkers = 0;
  let workerOnJob = false;
  if (num(row.machine_limit) > 0) {
    const rows = await db
      .selectFrom('tasks')
      .select('worker')
      .distinct()
      .where('job_id', '=', row.id)
      .where('state', '=', 'rendering')
      .execute();
    renderingWorkers = rows.length;
    workerOnJob = rows.some((r) => r.worker === workerName);
  }
  return {
    id: row.id,
    priority: num(row.priority),
    submittedAt: num(row.submitted_at),
    pool: row.pool,
    secondaryPool: row.secondary_pool,
    group: row.grp,
    regions: json(row.regions),
    allowList: json(row.allow_list),
    denyList: json(row.deny_list),
    limits: json(row.limits),
    machineLimit: num(row.machine_limit),
    renderingWorkers,
    workerOnJob,
    // The dispatch query already left out jobs this worker is bad for.
    workerIsBad: false,
  };
}

/**
 * Marks the worker seen now and returns its row. The UPDATE also holds the worker's row lock
 * until the transaction ends, so one worker's claims, reports and heartbeats run one at a
 * time on PostgreSQL (its slot count and state cannot be raced).
 */
export async function touchWorker(
  db: Db,
  name: string,
  now: number,
): Promise<Selectable<WorkersTable>> {
  const worker = await db
    .updateTable('workers')
    .set({ last_seen_at: now })
    .where('name', '=', name)
    .returningAll()
    .executeTakeFirst();
  if (!worker) throw notFound(`worker ${name}`);
  return worker;
}

export async function fetchWorkerRow(db: Db, name: string): Promise<Selectable<WorkersTable>> {
  const worker = await db
    .selectFrom('workers')
    .selectAll()
    .where('name', '=', name)
    .executeTakeFirst();
  if (!worker) throw notFound(`worker ${name}`);
  return worker;
}

async function runningCount(db: Db, worker: string): Promise<number> {
  const r = await db
    .selectFrom('tasks')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('worker', '=', worker)
    .where('state', '=', 'rendering')
    .executeTakeFirstOrThrow();
  return num(r.n);
}

async function setWorkerState(
  db: Db,
  now: number,
  worker: Selectable<WorkersTable>,
  state: 'idle' | 'rendering',
  extra: Record<string, unknown> = {},
): Promise<void> {
  if (worker.state === state) return;
  await db.updateTable('workers').set({ state }).where('name', '=', worker.name).execute();
  worker.state = state;
  await recordEvent(db, now, {
    type: state === 'idle' ? 'worker.idle' : 'worker.rendering',
    worker: worker.name,
    data: extra,
  });
}

async function readLimits(db: Db): Promise<Map<string, LimitState>> {
  const rows = await db.selectFrom('limits').selectAll().execute();
  return new Map(rows.map((l) => [l.name, { max: num(l.max), inUse: num(l.in_use) }]));
}

/**
 * Claims the next task for the worker (see the policy), or undefined. The caller holds the
 * worker's row (`touchWorker`). What the candidate query read may be stale by the time a job
 * is chosen (other connections claim too): the chosen job is re-checked under its row lock,
 * and a job that no longer qualifies is passed over for the next one.
 */
export async function claim(
  db: Db,
  dialect: Dialect,
  now: number,
  worker: Selectable<WorkersTable>,
  settings: DispatchSettings,
): Promise<TaskAssignment | undefined> {
  if (num(worker.enabled) !== 1) return undefined;
  if ((await runningCount(db, worker.name)) >= num(worker.slots)) return undefined;
  const profile = profileOf(worker);
  let limits = await readLimits(db);

  for (let offset = 0; ; offset += CANDIDATE_PAGE) {
    const page = await candidatePage(db, profile, offset);
    if (page.length === 0) return undefined;
    let candidates = await Promise.all(page.map((row) => toCandidate(db, row, worker.name)));
    for (;;) {
      const chosen = pickJob(candidates, profile, limits);
      if (!chosen) break;
      const got = await claimFromJob(db, dialect, now, worker, chosen.id, limits, settings);
      if (typeof got === 'object') return got;
      // Claimed away, changed, or a limit ran out since it was read: try the next job.
      if (got === 'limit') limits = await readLimits(db);
      candidates = candidates.filter((c) => c.id !== chosen.id);
    }
    if (page.length < CANDIDATE_PAGE) return undefined;
  }
}

/**
 * Claims the first queued task of a job the policy chose, or says why it could not: `gone`
 * (the job no longer qualifies or has no queued task left) or `limit` (a limit is used up).
 */
async function claimFromJob(
  db: Db,
  dialect: Dialect,
  now: number,
  worker: Selectable<WorkersTable>,
  jobId: string,
  limits: ReadonlyMap<string, LimitState>,
  settings: DispatchSettings,
): Promise<TaskAssignment | 'gone' | 'limit'> {
  // Lock order: the job, then limits, then the task (see the top of this file). Under the
  // job's lock its state, counters and rendering workers (machine limit) are current.
  const job = await lockJobRow(db, dialect, jobId);
  if (!job || num(job.n_queued) <= 0) return 'gone';
  const fresh = await toCandidate(db, job, worker.name);
  if (!pickJob([fresh], profileOf(worker), limits)) return 'gone';
  const leaseExpiresAt = now + settings.leaseTtlMs;
  const held = await takeLimits(db, json<string[]>(job.limits), new Set(limits.keys()));
  if (!held) return 'limit';
  const task = await db
    .updateTable('tasks')
    .set({
      state: 'rendering',
      worker: worker.name,
      // `<random>.<job>.<index>.<attempt>`: see `newLeasePrefix`.
      lease: sql<string>`cast(${newLeasePrefix(job.id)} as text) || '.' || idx || '.' || (attempt + 1)`,
      lease_expires_at: leaseExpiresAt,
      held_limits: JSON.stringify(held),
      attempt: sql`attempt + 1`,
      progress: 0,
      status: '',
      log_bytes: 0,
      log_seq: 0,
      log_batch: 0,
      log_trim_seq: 0,
      started_at: now,
      finished_at: null,
    })
    .where('job_id', '=', job.id)
    .where('state', '=', 'queued')
    .where('idx', '=', (eb) =>
      // SKIP LOCKED: a claimer never waits for, nor takes, a task another one is claiming;
      // the outer UPDATE re-checks `state = 'queued'` on the row it finally writes.
      forUpdateSkipLocked(
        eb
          .selectFrom('tasks')
          .select('idx')
          .where('job_id', '=', job.id)
          .where('state', '=', 'queued')
          .orderBy('idx')
          .limit(1),
        dialect,
      ),
    )
    .returning(['idx', 'frames', 'attempt', 'lease'])
    .executeTakeFirst();
  if (!task) {
    await releaseLimits(db, JSON.stringify(held));
    return 'gone';
  }
  await bumpCounts(db, job.id, { queued: -1, rendering: 1 });
  if (job.state === 'queued') {
    await db
      .updateTable('jobs')
      .set({ state: 'rendering', started_at: job.started_at ?? now })
      .where('id', '=', job.id)
      .execute();
    if (job.started_at === null) {
      await recordEvent(db, now, {
        type: 'job.started',
        jobId: job.id,
        worker: worker.name,
        data: {},
      });
    }
  }
  await recordEvent(db, now, {
    type: 'task.started',
    jobId: job.id,
    taskIndex: num(task.idx),
    worker: worker.name,
    data: { attempt: num(task.attempt) },
  });
  await setWorkerState(db, now, worker, 'rendering', { jobId: job.id });
  return {
    lease: task.lease!,
    leaseExpiresAt,
    jobId: job.id,
    jobName: job.name,
    taskIndex: num(task.idx),
    attempt: num(task.attempt),
    frames: parseFrameList(task.frames),
    plugin: job.plugin,
    pluginInfo: json(job.plugin_info),
    environment: json(job.environment),
    outputDirectories: json(job.output_dirs),
    outputFilenames: json(job.output_files),
    taskTimeoutSeconds: num(job.task_timeout_s),
  };
}

/** The task a worker's lease names, if the lease is still the current one. */
async function taskByLease(
  db: Db,
  workerName: string,
  lease: string,
): Promise<Selectable<TasksTable>> {
  const task = await db
    .selectFrom('tasks')
    .selectAll()
    .where('lease', '=', lease)
    .where('state', '=', 'rendering')
    .executeTakeFirst();
  if (!task || task.worker !== workerName) throw leaseLost(lease);
  return task;
}

/**
 * Ends a rendering task: its lease, limits and counters. The UPDATE re-checks that `task`'s
 * lease is still the current one (and, with `expiredBefore`, that it is still expired: a
 * heartbeat may have renewed it since it was read); returns false, changing nothing, when it
 * is not. The caller holds the job's row lock.
 */
async function endTask(
  db: Db,
  now: number,
  task: Selectable<TasksTable>,
  state: 'completed' | 'queued' | 'failed',
  extra: Record<string, unknown> = {},
  expiredBefore?: number,
): Promise<boolean> {
  let q = db
    .updateTable('tasks')
    .set({
      state,
      lease: null,
      lease_expires_at: null,
      held_limits: '[]',
      worker: state === 'queued' ? null : task.worker,
      finished_at: state === 'queued' ? null : now,
      ...extra,
    })
    .where('job_id', '=', task.job_id)
    .where('idx', '=', task.idx)
    .where('lease', '=', task.lease)
    .where('state', '=', 'rendering');
  if (expiredBefore !== undefined) q = q.where('lease_expires_at', '<', expiredBefore);
  const r = await q.executeTakeFirst();
  if (Number(r.numUpdatedRows) === 0) return false;
  await releaseLimits(db, task.held_limits);
  await bumpCounts(db, task.job_id, { rendering: -1, [state]: 1 });
  return true;
}

/** Ends the task a report names, or refuses the report when its lease is no longer current. */
async function endReportedTask(
  db: Db,
  now: number,
  task: Selectable<TasksTable>,
  state: 'completed' | 'queued' | 'failed',
  extra: Record<string, unknown> = {},
): Promise<void> {
  if (!(await endTask(db, now, task, state, extra))) throw leaseLost(task.lease ?? '');
}

/** Applies a worker's report on the task its lease names. */
export async function report(
  db: Db,
  dialect: Dialect,
  now: number,
  workerName: string,
  r: TaskReport,
): Promise<void> {
  const task = await taskByLease(db, workerName, r.lease);
  // Lock order: the job before its task. The task row read above is re-checked by lease in
  // the UPDATE that ends it (endReportedTask), which comes before any other write.
  await lockJobRow(db, dialect, task.job_id);
  const at = { jobId: task.job_id, taskIndex: num(task.idx), worker: workerName };
  if (r.outcome === 'completed') {
    await endReportedTask(db, now, task, 'completed', { progress: 100 });
    await recordEvent(db, now, {
      type: 'task.completed',
      ...at,
      data: { attempt: num(task.attempt) },
    });
    await settleJob(db, dialect, now, task.job_id);
    await refreshFrameDependents(db, dialect, task.job_id);
    return;
  }
  if (r.outcome === 'handed-back') {
    await endReportedTask(db, now, task, 'queued');
    await recordEvent(db, now, {
      type: 'task.requeued',
      ...at,
      data: { reason: 'handed back by the worker' },
    });
    await settleJob(db, dialect, now, task.job_id);
    return;
  }
  await recordTaskError(
    db,
    dialect,
    now,
    task,
    workerName,
    r.message || `exit code ${r.exitCode ?? 'unknown'}`,
    r.exitCode,
  );
}

/**
 * Counts an error against the task, the job and the worker (bad-worker list); retries the
 * task while it has retries left, otherwise fails it and the job.
 */
async function recordTaskError(
  db: Db,
  dialect: Dialect,
  now: number,
  task: Selectable<TasksTable>,
  workerName: string,
  message: string,
  exitCode: number | null,
): Promise<void> {
  // The caller holds the job's row lock: its error count is current.
  const job = (await fetchJobRow(db, task.job_id))!;
  const at = { jobId: task.job_id, taskIndex: num(task.idx), worker: workerName };
  const taskErrors = num(task.error_count) + 1;
  const jobErrors = num(job.error_count) + 1;
  const retriesLeft = taskErrors <= num(job.task_retries);
  // First write: refuses the report (changing nothing) if the lease is no longer current.
  await endReportedTask(db, now, task, retriesLeft ? 'queued' : 'failed', {
    error_count: taskErrors,
  });
  await db.updateTable('jobs').set({ error_count: jobErrors }).where('id', '=', job.id).execute();
  await db
    .insertInto('job_worker_errors')
    .values({ job_id: job.id, worker: workerName, errors: 1 })
    .onConflict((oc) =>
      oc.columns(['job_id', 'worker']).doUpdateSet({ errors: sql`job_worker_errors.errors + 1` }),
    )
    .execute();
  const workerErrors = await db
    .selectFrom('job_worker_errors')
    .select('errors')
    .where('job_id', '=', job.id)
    .where('worker', '=', workerName)
    .executeTakeFirstOrThrow();
  const threshold = num(job.bad_worker_errors);
  const nowBad = threshold > 0 && num(workerErrors.errors) === threshold;
  await recordEvent(db, now, {
    type: 'job.error',
    ...at,
    data: {
      attempt: num(task.attempt),
      message,
      exitCode,
      taskErrors,
      jobErrors,
      badWorker: nowBad,
    },
  });

  if (retriesLeft) {
    await recordEvent(db, now, {
      type: 'task.requeued',
      ...at,
      data: { reason: 'error', retry: taskErrors },
    });
  } else {
    await recordEvent(db, now, {
      type: 'task.failed',
      ...at,
      data: { message, errors: taskErrors },
    });
  }
  const limit = num(job.job_error_limit);
  const overLimit = limit > 0 && jobErrors >= limit;
  if (!retriesLeft || overLimit) {
    await stopRendering(db, job.id, 'queued');
    await recountJob(db, job.id);
    await db
      .updateTable('jobs')
      .set({ state: 'failed', finished_at: now })
      .where('id', '=', job.id)
      .execute();
    await recordEvent(db, now, {
      type: 'job.failed',
      jobId: job.id,
      data: {
        reason: retriesLeft
          ? `${jobErrors} errors reached the job's error limit (${limit})`
          : `task ${num(task.idx)} failed after ${taskErrors} errors: ${message}`,
      },
    });
    // Jobs waiting for this one are released (resumeOnFailedDependencies) or told it failed.
    await releaseDependents(db, dialect, now, job.id);
    return;
  }
  await settleJob(db, dialect, now, job.id);
}

/** Requeues every task a worker holds (it restarted, stopped or stalled). */
export async function requeueWorkerTasks(
  db: Db,
  dialect: Dialect,
  now: number,
  workerName: string,
  reason: string,
): Promise<number> {
  const held = await db
    .selectFrom('tasks')
    .selectAll()
    .where('worker', '=', workerName)
    .where('state', '=', 'rendering')
    .orderBy('job_id')
    .orderBy('idx')
    .execute();
  let requeued = 0;
  for (const task of held) {
    await lockJobRow(db, dialect, task.job_id);
    if (!(await endTask(db, now, task, 'queued'))) continue;
    requeued++;
    await recordEvent(db, now, {
      type: 'task.requeued',
      jobId: task.job_id,
      taskIndex: num(task.idx),
      worker: workerName,
      data: { reason },
    });
    await settleJob(db, dialect, now, task.job_id);
  }
  return requeued;
}

/**
 * The lease-expiry query: runs every house-keeping round (2 s), so it must read only the
 * partial index `tasks_rendering` (rendering tasks by lease expiry), never the tasks table.
 * `state = 'rendering'` is written as a literal so the planner can match the index's WHERE
 * clause, and there is no ORDER BY: with `ORDER BY job_id, idx` SQLite walked the primary key
 * of every task instead (≈1 s per round with 8M tasks); the few rows are sorted here.
 * `expiredLeasesQuery(db, now).compile()` is what the query-plan tests explain.
 */
export function expiredLeasesQuery(db: Db, now: number) {
  return db
    .selectFrom('tasks')
    .selectAll()
    .where('state', '=', sql.lit('rendering'))
    .where('lease_expires_at', '<', now);
}

/** Requeues tasks whose leases ran out: their worker stopped saying it holds them. */
export async function requeueExpired(db: Db, dialect: Dialect, now: number): Promise<number> {
  const expired = await expiredLeasesQuery(db, now).execute();
  // Job then task order, as everywhere: managers lock in one order and do not deadlock.
  expired.sort((a, b) =>
    a.job_id < b.job_id ? -1 : a.job_id > b.job_id ? 1 : num(a.idx) - num(b.idx),
  );
  let requeued = 0;
  for (const task of expired) {
    await lockJobRow(db, dialect, task.job_id);
    // Another manager's house keeping may have requeued it, or a heartbeat renewed it.
    if (!(await endTask(db, now, task, 'queued', {}, now))) continue;
    requeued++;
    await recordEvent(db, now, {
      type: 'task.requeued',
      jobId: task.job_id,
      taskIndex: num(task.idx),
      worker: task.worker,
      data: { reason: 'lease expired' },
    });
    await settleJob(db, dialect, now, task.job_id);
  }
  return requeued;
}

export { setWorkerState, runningCount };
