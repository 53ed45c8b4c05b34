import type { Kysely, Insertable } from 'kysely';
import { formatFrameList } from '../../core/frames.js';
import { assertJobAction } from '../../core/job-state.js';
import type { JobAction, JobChanges, JobSubmission, TaskState } from '../../core/job-spec.js';
import { conflict, invalid, notFound } from '../../core/errors.js';
import { forShare, type Dialect } from './dialect.js';
import { recordEvent } from './events.js';
import {
  WAITING_FOR_DEPENDENCIES,
  dependencyPendingReason,
  dependencyStandings,
  fetchJobRow,
  lockJobRow,
  pendingReasonForDependencies,
  recountJob,
  refreshFrameDependentTasks,
  releaseDependents,
  settleJob,
  unmetDependencies,
} from './job-flow.js';
import { newJobId } from './ids.js';
import { releaseLimits } from './limits.js';
import type { Database, TasksTable } from './schema.js';
import type { CreateJobOptions } from '../contract.js';

type Db = Kysely<Database>;

/** Rows per multi-row INSERT: well under SQLite's 32,766 bound variables (18 columns). */
export const TASK_INSERT_BATCH = 1000;

/** Why a job is pending while event plugins handle its submission. */
export const WAITING_FOR_PLUGINS = 'waiting for event plugins';

/** How many tasks a job of `frames` frames in chunks of `chunkSize` has. */
export function taskCountOf(frames: readonly number[], chunkSize: number): number {
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw invalid('chunkSize', `must be a positive integer, got ${chunkSize}`);
  }
  return Math.ceil(frames.length / chunkSize);
}

/**
 * Checks that every dependency exists. Share-locked until commit: a dependency finishing
 * meanwhile on another connection waits for this job to exist (and then releases it), or
 * finishes first and is seen so. A staged creation calls it again in its last transaction.
 */
export async function checkDependencies(
  db: Db,
  dialect: Dialect,
  sub: JobSubmission,
): Promise<void> {
  const dependencies = [...new Set(sub.dependencies)];
  if (dependencies.length === 0) return;
  const found = await forShare(
    db.selectFrom('jobs').select('id').where('id', 'in', dependencies).orderBy('id'),
    dialect,
  ).execute();
  const known = new Set(found.map((r) => r.id));
  // Named by its place in the submission (`dependencies.2`), as every other field error is.
  const missing = sub.dependencies.findIndex((d) => !known.has(d));
  if (missing >= 0) {
    throw invalid(`dependencies.${missing}`, `job ${sub.dependencies[missing]} does not exist`);
  }
}

/**
 * The state a new job's tasks are inserted in: suspended for a job submitted suspended,
 * pending for a frame-dependent job with a dependency not yet completed, queued otherwise.
 * (The rule `unmetDependencies` applies; the job row does not exist yet, so it is read from
 * the dependencies' rows.) `insertJobRow` checks it again when the job row is written.
 */
export async function initialTaskState(db: Db, sub: JobSubmission): Promise<TaskState> {
  if (sub.initialState === 'suspended') return 'suspended';
  const dependencies = [...new Set(sub.dependencies)];
  if (!sub.frameDependent || dependencies.length === 0) return 'queued';
  const rows = await db
    .selectFrom('jobs')
    .select(['n_completed', 'task_count'])
    .where('id', 'in', dependencies)
    .execute();
  const unmet =
    rows.length < dependencies.length ||
    rows.some((r) => Number(r.n_completed) < Number(r.task_count));
  return unmet ? 'pending' : 'queued';
}

/**
 * Inserts tasks `from` (inclusive) to `to` (exclusive) of a job, `TASK_INSERT_BATCH` rows per
 * statement. Rows are built per statement from slices of `frames`, so a million-task job
 * never holds a million row objects (chunking 1M frames at once took ≈190 ms of one core).
 */
export async function insertTasks(
  db: Db,
  jobId: string,
  frames: readonly number[],
  chunkSize: number,
  from: number,
  to: number,
  state: TaskState,
): Promise<void> {
  for (let i = from; i < to; i += TASK_INSERT_BATCH) {
    const rows: Array<Insertable<TasksTable>> = [];
    for (let idx = i; idx < Math.min(i + TASK_INSERT_BATCH, to); idx++) {
      const chunk = frames.slice(idx * chunkSize, (idx + 1) * chunkSize);
      let first = chunk[0]!;
      let last = first;
      for (const f of chunk) {
        if (f < first) first = f;
        if (f > last) last = f;
      }
      rows.push({
        job_id: jobId,
        idx,
        frames: formatFrameList(chunk),
        first_frame: first,
        last_frame: last,
        state,
        worker: null,
        lease: null,
        lease_expires_at: null,
        held_limits: '[]',
        attempt: 0,
        error_count: 0,
        progress: 0,
        status: '',
        log_bytes: 0,
        log_seq: 0,
        started_at: null,
        finished_at: null,
      });
    }
    await db.insertInto('tasks').values(rows).execute();
  }
}

/** Creates a job and its tasks in the caller's transaction; returns the job id. */
export async function insertJob(
  db: Db,
  dialect: Dialect,
  now: number,
  sub: JobSubmission,
  frames: readonly number[],
  options: CreateJobOptions = {},
  id = newJobId(now),
): Promise<string> {
  await checkDependencies(db, dialect, sub);
  const taskState = await initialTaskState(db, sub);
  await insertTasks(
    db,
    id,
    frames,
    sub.chunkSize,
    0,
    taskCountOf(frames, sub.chunkSize),
    taskState,
  );
  await insertJobRow(db, dialect, now, id, sub, frames, options, taskState);
  return id;
}

/**
 * Writes the job row of a job whose tasks are all inserted (in `taskState`), its
 * dependencies, and the job.submitted event: from this commit on the job exists — it is
 * never seen with part of its tasks. The caller holds `checkDependencies`' locks.
 */
export async function insertJobRow(
  db: Db,
  dialect: Dialect,
  now: number,
  id: string,
  sub: JobSubmission,
  frames: readonly number[],
  options: CreateJobOptions,
  taskState: TaskState,
): Promise<void> {
  const taskCount = taskCountOf(frames, sub.chunkSize);
  const holdFor = [...new Set(options.holdFor ?? [])];
  const dependencies = [...new Set(sub.dependencies)];
  for (const dep of dependencies) {
    await db.insertInto('job_dependencies').values({ job_id: id, depends_on: dep }).execute();
  }
  const waits = dependencies.length > 0 ? await dependencyStandings(db, id, sub) : new Map();
  const unmet = [...waits.keys()];
  const suspended = sub.initialState === 'suspended';
  const frameWait = sub.frameDependent && unmet.length > 0;

  let state = 'queued';
  let reason = '';
  if (holdFor.length > 0) {
    // Principle 3: not dispatchable before its job-submitted plugins have run.
    state = 'pending';
    reason = `${WAITING_FOR_PLUGINS}: ${holdFor.join(', ')}`;
  } else if (suspended) state = 'suspended';
  else if (unmet.length > 0 && !sub.frameDependent) {
    state = 'pending';
    reason = dependencyPendingReason(waits);
  }
  const count = (s: TaskState) => (s === taskState ? taskCount : 0);
  await db
    .insertInto('jobs')
    .values({
      id,
      name: sub.name,
      batch_name: sub.batchName,
      user_name: sub.user,
      machine_name: sub.machineName,
      department: sub.department,
      comment: sub.comment,
      plugin: sub.plugin,
      plugin_info: JSON.stringify(sub.pluginInfo),
      // As submitted: pipelines compare it with what they sent (`1, 3, 5` stays `1, 3, 5`).
      frames: sub.frames,
      frame_count: frames.length,
      task_count: taskCount,
      chunk_size: sub.chunkSize,
      priority: sub.priority,
      pool: sub.pool,
      secondary_pool: sub.secondaryPool,
      grp: sub.group,
      machine_limit: sub.machineLimit,
      allow_list: JSON.stringify(sub.allowList),
      deny_list: JSON.stringify(sub.denyList),
      limits: JSON.stringify([...new Set(sub.limits)]),
      regions: JSON.stringify([...new Set(sub.regions)]),
      frame_dependent: sub.frameDependent ? 1 : 0,
      resume_on_failed_deps: sub.resumeOnFailedDependencies ? 1 : 0,
      resume_on_deleted_deps: sub.resumeOnDeletedDependencies ? 1 : 0,
      output_dirs: JSON.stringify([...new Set(sub.outputDirectories)]),
      output_files: JSON.stringify(sub.outputFilenames),
      extra_info: JSON.stringify(sub.extraInfo),
      environment: JSON.stringify(sub.environment),
      initial_state: sub.initialState,
      task_timeout_s: sub.taskTimeoutSeconds,
      task_retries: sub.taskRetries,
      job_error_limit: sub.jobErrorLimit,
      bad_worker_errors: sub.badWorkerErrors,
      on_complete: sub.onComplete,
      event_opt_ins: JSON.stringify(sub.eventOptIns),
      state,
      pending_reason: reason,
      // Every task was inserted in one state: the counters need no recount.
      n_pending: count('pending'),
      n_queued: count('queued'),
      n_rendering: 0,
      n_completed: 0,
      n_failed: 0,
      n_suspended: count('suspended'),
      error_count: 0,
      submitted_at: now,
      started_at: null,
      finished_at: null,
      held_for: holdFor.join(','),
      plugin_data: '{}',
    })
    .execute();
  // A staged creation chose its tasks' state before its last transaction: a dependency may
  // have completed or been requeued since. Rare; put the tasks right and count again.
  if (!suspended && sub.frameDependent && (taskState === 'pending') !== frameWait) {
    await db
      .updateTable('tasks')
      .set({ state: frameWait ? 'pending' : 'queued' })
      .where('job_id', '=', id)
      .where('state', '=', taskState)
      .execute();
    await recountJob(db, id);
  }
  if (frameWait) await refreshFrameDependentTasks(db, id);
  await recordEvent(db, now, {
    type: 'job.submitted',
    jobId: id,
    data: { name: sub.name, user: sub.user, plugin: sub.plugin, tasks: taskCount, state },
  });
  if (state === 'pending') {
    await recordEvent(db, now, {
      type: 'job.pended',
      jobId: id,
      data: { reason, waitingFor: holdFor.length > 0 ? holdFor : unmet },
    });
  }
  if (options.prerequisiteOf !== undefined) {
    await addDependency(db, dialect, now, options.prerequisiteOf, id);
  }
}

/**
 * Makes `jobId` wait for `dependsOn` too (its other dependencies stay). A job that is queued
 * goes back to pending until it completes.
 */
export async function addDependency(
  db: Db,
  dialect: Dialect,
  now: number,
  jobId: string,
  dependsOn: string,
): Promise<void> {
  const row = await lockJobRow(db, dialect, jobId);
  if (!row) throw notFound(`job ${jobId}`);
  await db
    .insertInto('job_dependencies')
    .values({ job_id: jobId, depends_on: dependsOn })
    .onConflict((oc) => oc.doNothing())
    .execute();
  if ((row.state === 'queued' || row.state === 'rendering') && row.frame_dependent === 0) {
    await stopRendering(db, jobId, 'queued');
    await db
      .updateTable('jobs')
      .set({ state: 'pending', pending_reason: WAITING_FOR_DEPENDENCIES })
      .where('id', '=', jobId)
      .execute();
    await recountJob(db, jobId);
    await recordEvent(db, now, {
      type: 'job.pended',
      jobId,
      data: { reason: WAITING_FOR_DEPENDENCIES, waitingFor: [dependsOn] },
    });
  }
}

/**
 * An event plugin's job-submitted handler finished with the job. When the last one has, the
 * job goes where it would have gone at submission (suspended, waiting for dependencies, or
 * queued). A handler that failed leaves the job pending with the failure as the reason,
 * until a user releases it.
 */
export async function releaseHold(
  db: Db,
  dialect: Dialect,
  now: number,
  jobId: string,
  plugin: string,
  failure: string | undefined,
): Promise<void> {
  // Locked: two plugins finishing at once must not both write `held_for` from one read.
  const row = await lockJobRow(db, dialect, jobId);
  if (!row) return;
  const held = row.held_for === '' ? [] : row.held_for.split(',');
  if (!held.includes(plugin)) return;
  const rest = held.filter((p) => p !== plugin);
  const waiting = row.state === 'pending' && row.pending_reason.startsWith(WAITING_FOR_PLUGINS);
  if (failure !== undefined) {
    const reason = `event plugin ${plugin} failed: ${failure}`.slice(0, 1000);
    await db
      .updateTable('jobs')
      .set({ held_for: rest.join(','), ...(waiting ? { pending_reason: reason } : {}) })
      .where('id', '=', jobId)
      .execute();
    if (waiting)
      await recordEvent(db, now, { type: 'job.pended', jobId, data: { reason, plugin } });
    return;
  }
  if (rest.length > 0 || !waiting) {
    const reason = waiting ? `${WAITING_FOR_PLUGINS}: ${rest.join(', ')}` : row.pending_reason;
    await db
      .updateTable('jobs')
      .set({ held_for: rest.join(','), pending_reason: reason })
      .where('id', '=', jobId)
      .execute();
    return;
  }
  const next =
    row.initial_state === 'suspended'
      ? { state: 'suspended', reason: '' }
      : await activeOrPending(db, jobId);
  await db
    .updateTable('jobs')
    .set({ held_for: '', state: next.state, pending_reason: next.reason })
    .where('id', '=', jobId)
    .execute();
  await recordEvent(db, now, {
    type: 'job.released',
    jobId,
    data: { reason: 'event plugins finished' },
  });
  if (next.state === 'pending') {
    await recordEvent(db, now, { type: 'job.pended', jobId, data: { reason: next.reason } });
  }
  await settleJob(db, dialect, now, jobId);
}

/** Records what an event plugin keeps on a job (replacing its earlier record). */
export async function setPluginData(
  db: Db,
  dialect: Dialect,
  jobId: string,
  plugin: string,
  data: unknown,
): Promise<void> {
  const row = await lockJobRow(db, dialect, jobId);
  if (!row) throw notFound(`job ${jobId}`);
  const all = JSON.parse(row.plugin_data) as Record<string, unknown>;
  all[plugin] = data;
  await db
    .updateTable('jobs')
    .set({ plugin_data: JSON.stringify(all) })
    .where('id', '=', jobId)
    .execute();
}

/**
 * Stops a job's rendering tasks (all, or the chosen ones): their leases end at once, so the
 * worker's next heartbeat or log report learns the task was taken away and kills it.
 */
export async function stopRendering(
  db: Db,
  jobId: string,
  next: TaskState,
  indexes?: readonly number[],
): Promise<number> {
  let q = db
    .selectFrom('tasks')
    .select(['idx', 'held_limits'])
    .where('job_id', '=', jobId)
    .where('state', '=', 'rendering');
  if (indexes) q = q.where('idx', 'in', indexes);
  const rendering = await q.execute();
  for (const t of rendering) {
    await releaseLimits(db, t.held_limits);
    await db
      .updateTable('tasks')
      .set({ state: next, lease: null, lease_expires_at: null, worker: null, held_limits: '[]' })
      .where('job_id', '=', jobId)
      .where('idx', '=', t.idx)
      .execute();
  }
  return rendering.length;
}

async function setTasks(
  db: Db,
  jobId: string,
  from: readonly TaskState[],
  to: TaskState,
): Promise<void> {
  await db
    .updateTable('tasks')
    .set({ state: to })
    .where('job_id', '=', jobId)
    .where('state', 'in', from)
    .execute();
}

/** The state a job returns to when it becomes active again: pending while it waits. */
async function activeOrPending(db: Db, jobId: string): Promise<{ state: string; reason: string }> {
  const row = (await fetchJobRow(db, jobId))!;
  if (row.frame_dependent === 0 && (await unmetDependencies(db, jobId)).length > 0) {
    return { state: 'pending', reason: await pendingReasonForDependencies(db, jobId) };
  }
  return { state: 'queued', reason: '' };
}

/** Applies a user's action to a job, in the caller's transaction. */
export async function applyAction(
  db: Db,
  dialect: Dialect,
  now: number,
  jobId: string,
  action: JobAction,
  reason: string | undefined,
): Promise<void> {
  const row = await lockJobRow(db, dialect, jobId);
  if (!row) throw notFound(`job ${jobId}`);
  assertJobAction(row.state as never, action);
  const setJob = (state: string, pendingReason = '', extra: Record<string, unknown> = {}) =>
    db
      .updateTable('jobs')
      .set({ state, pending_reason: pendingReason, ...extra })
      .where('id', '=', jobId)
      .execute();

  switch (action) {
    case 'suspend': {
      await stopRendering(db, jobId, 'suspended');
      await setTasks(db, jobId, ['queued', 'pending'], 'suspended');
      await setJob('suspended');
      await recordEvent(db, now, { type: 'job.suspended', jobId, data: {} });
      break;
    }
    case 'resume': {
      const next = await activeOrPending(db, jobId);
      await setTasks(db, jobId, ['suspended'], row.frame_dependent === 1 ? 'pending' : 'queued');
      await setJob(next.state, next.reason);
      await recordEvent(db, now, { type: 'job.resumed', jobId, data: {} });
      if (next.state === 'pending') {
        await recordEvent(db, now, { type: 'job.pended', jobId, data: { reason: next.reason } });
      }
      break;
    }
    case 'requeue': {
      await stopRendering(db, jobId, 'queued');
      await setTasks(
        db,
        jobId,
        ['completed', 'failed', 'suspended', 'pending'],
        row.frame_dependent === 1 ? 'pending' : 'queued',
      );
      if (row.frame_dependent === 1) await setTasks(db, jobId, ['queued'], 'pending');
      await db
        .updateTable('tasks')
        .set({ error_count: 0, progress: 0, status: '', finished_at: null })
        .where('job_id', '=', jobId)
        .execute();
      await db.deleteFrom('job_worker_errors').where('job_id', '=', jobId).execute();
      const next = await activeOrPending(db, jobId);
      await setJob(next.state, next.reason, { error_count: 0, finished_at: null });
      await recordEvent(db, now, { type: 'job.requeued', jobId, data: {} });
      break;
    }
    case 'fail': {
      await stopRendering(db, jobId, 'failed');
      await setTasks(db, jobId, ['queued', 'pending', 'suspended'], 'failed');
      await setJob('failed', '', { finished_at: now });
      await recordEvent(db, now, {
        type: 'job.failed',
        jobId,
        data: { reason: reason ?? 'failed by a user' },
      });
      break;
    }
    case 'delete':
    case 'archive': {
      // A deleted or archived job never renders again: its unfinished tasks are shown
      // suspended (not queued, which would read as dispatchable), finished ones keep their
      // state. House keeping purges a deleted job's tasks later (`purgeDeletedJobs`).
      await stopRendering(db, jobId, 'suspended');
      await setTasks(db, jobId, ['queued', 'pending'], 'suspended');
      const state = action === 'delete' ? 'deleted' : 'archived';
      await setJob(state, '', {
        finished_at: row.finished_at ?? now,
        ...(action === 'delete' ? { deleted_at: now } : {}),
      });
      await recordEvent(db, now, {
        type: action === 'delete' ? 'job.deleted' : 'job.archived',
        jobId,
        data: {},
      });
      break;
    }
    case 'pend': {
      await stopRendering(db, jobId, 'queued');
      await setTasks(db, jobId, ['suspended'], 'queued');
      await setJob('pending', reason ?? 'held by a user');
      await recordEvent(db, now, {
        type: 'job.pended',
        jobId,
        data: { reason: reason ?? 'held by a user' },
      });
      break;
    }
    case 'release': {
      // A user's release overrides every hold: dependencies and event plugins alike.
      await setJob('queued', '', { held_for: '' });
      await recordEvent(db, now, {
        type: 'job.released',
        jobId,
        data: { reason: reason ?? 'released by a user' },
      });
      break;
    }
  }
  await recountJob(db, jobId);
  if (row.frame_dependent === 1) await refreshFrameDependentTasks(db, jobId);
  await settleJob(db, dialect, now, jobId);
  // Failed, deleted or archived before completing, or requeued after that: the jobs waiting
  // for this one are judged again (released, or told which dependency cannot complete).
  if (action === 'fail' || action === 'delete' || action === 'archive' || action === 'requeue') {
    await releaseDependents(db, dialect, now, jobId);
  }
}

/** Requeues chosen tasks; a finished or failed job becomes active again. */
export async function requeueChosenTasks(
  db: Db,
  dialect: Dialect,
  now: number,
  jobId: string,
  indexes: readonly number[],
): Promise<void> {
  const row = await lockJobRow(db, dialect, jobId);
  if (!row) throw notFound(`job ${jobId}`);
  if (row.state === 'deleted' || row.state === 'archived') {
    throw conflict(`cannot requeue tasks of a job that is ${row.state}`);
  }
  const taskCount = Number(row.task_count);
  const bad = indexes.find((i) => i < 0 || i >= taskCount);
  if (bad !== undefined)
    throw invalid('tasks', `task ${bad} does not exist (the job has tasks 0-${taskCount - 1})`);
  await stopRendering(db, jobId, 'queued', indexes);
  await db
    .updateTable('tasks')
    .set({ state: 'queued', error_count: 0, progress: 0, status: '', finished_at: null })
    .where('job_id', '=', jobId)
    .where('idx', 'in', indexes)
    .where('state', 'in', ['completed', 'failed', 'suspended'])
    .execute();
  if (row.state === 'completed' || row.state === 'failed') {
    await db
      .updateTable('jobs')
      .set({ state: 'queued', finished_at: null })
      .where('id', '=', jobId)
      .execute();
  }
  await recordEvent(db, now, {
    type: 'task.requeued',
    jobId,
    data: { tasks: [...indexes], reason: 'requeued by a user' },
  });
  await recountJob(db, jobId);
  await settleJob(db, dialect, now, jobId);
  // A failed job active again may complete: its dependents wait for it again.
  if (row.state === 'failed') await releaseDependents(db, dialect, now, jobId);
}

/** Changes a live job's scheduling fields. */
export async function changeJob(
  db: Db,
  dialect: Dialect,
  now: number,
  jobId: string,
  changes: JobChanges,
): Promise<void> {
  const row = await lockJobRow(db, dialect, jobId);
  if (!row) throw notFound(`job ${jobId}`);
  if (row.state === 'deleted') throw conflict('cannot change a deleted job');
  const set: Record<string, unknown> = {};
  if (changes.name !== undefined) set.name = changes.name;
  if (changes.batchName !== undefined) set.batch_name = changes.batchName;
  if (changes.comment !== undefined) set.comment = changes.comment;
  if (changes.priority !== undefined) set.priority = changes.priority;
  if (changes.pool !== undefined) set.pool = changes.pool;
  if (changes.secondaryPool !== undefined) set.secondary_pool = changes.secondaryPool;
  if (changes.group !== undefined) set.grp = changes.group;
  if (changes.machineLimit !== undefined) set.machine_limit = changes.machineLimit;
  if (changes.limits !== undefined) set.limits = JSON.stringify([...new Set(changes.limits)]);
  if (changes.allowList !== undefined) set.allow_list = JSON.stringify(changes.allowList);
  if (changes.denyList !== undefined) set.deny_list = JSON.stringify(changes.denyList);
  if (changes.regions !== undefined) set.regions = JSON.stringify([...new Set(changes.regions)]);
  await db.updateTable('jobs').set(set).where('id', '=', jobId).execute();
  await recordEvent(db, now, { type: 'job.updated', jobId, data: { changes } });
}
