import { notFound } from '../../core/errors.js';
import type { JobAction, JobChanges } from '../../core/job-spec.js';
import type { Job, Task, TaskLogChunk } from '../../core/types.js';
import {
  MAX_PAGE,
  type JobFilter,
  type LogQuery,
  type Page,
  type TaskCommand,
} from '../contract.js';
import { addCountDeltas } from './job-counts.js';
import * as jobs from './jobs.js';
import type { StoreKit } from './kit.js';
import { jobFromRow, num, taskFromRow } from './rows.js';
import * as taskCommands from './task-commands.js';

/*
 * Jobs and their tasks as the store reads and changes them (`SqlStore`'s jobs family): each
 * change is one transaction (`kit.tx`) of a function of `jobs.ts` or `task-commands.ts`, then
 * a read of what it changed. Job creation is `job-creation.ts`.
 */

export async function fetchJob(kit: StoreKit, id: string): Promise<Job | undefined> {
  const row = await kit.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) return undefined;
  await addCountDeltas(kit.db, [row]);
  const [deps, bad] = await Promise.all([
    kit.db.selectFrom('job_dependencies').select('depends_on').where('job_id', '=', id).execute(),
    badWorkers(kit, [id]),
  ]);
  const job = jobFromRow(row, bad.get(id) ?? []);
  job.dependencies = deps.map((d) => d.depends_on);
  return job;
}

/** Bad-worker lists of the given jobs. */
async function badWorkers(kit: StoreKit, ids: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (ids.length === 0) return out;
  const rows = await kit.db
    .selectFrom('job_worker_errors as e')
    .innerJoin('jobs as j', 'j.id', 'e.job_id')
    .select(['e.job_id', 'e.worker'])
    .where('e.job_id', 'in', ids)
    .where('j.bad_worker_errors', '>', 0)
    .whereRef('e.errors', '>=', 'j.bad_worker_errors')
    .execute();
  for (const r of rows) out.set(r.job_id, [...(out.get(r.job_id) ?? []), r.worker]);
  return out;
}

export async function listJobs(kit: StoreKit, filter: JobFilter): Promise<Job[]> {
  let q = kit.db.selectFrom('jobs').selectAll();
  if (filter.states && filter.states.length > 0) q = q.where('state', 'in', filter.states);
  else if (!filter.all) q = q.where('state', 'not in', ['archived', 'deleted']);
  if (filter.user) q = q.where('user_name', '=', filter.user);
  const rows = await q
    .orderBy('submitted_at', 'desc')
    .orderBy('id', 'desc')
    .limit(Math.min(filter.limit ?? 100, MAX_PAGE))
    .offset(filter.offset ?? 0)
    .execute();
  await addCountDeltas(kit.db, rows);
  const ids = rows.map((r) => r.id);
  const [bad, deps] = await Promise.all([
    badWorkers(kit, ids),
    ids.length === 0
      ? Promise.resolve([])
      : kit.db.selectFrom('job_dependencies').selectAll().where('job_id', 'in', ids).execute(),
  ]);
  return rows.map((r) => {
    const job = jobFromRow(r, bad.get(r.id) ?? []);
    job.dependencies = deps.filter((d) => d.job_id === r.id).map((d) => d.depends_on);
    return job;
  });
}

export async function listTasks(kit: StoreKit, jobId: string, page: Page): Promise<Task[]> {
  await requireJob(kit, jobId);
  const rows = await kit.db
    .selectFrom('tasks')
    .selectAll()
    .where('job_id', '=', jobId)
    .where('idx', '>=', page.offset ?? 0)
    .orderBy('idx')
    .limit(Math.min(page.limit ?? MAX_PAGE, MAX_PAGE))
    .execute();
  return rows.map(taskFromRow);
}

async function requireJob(kit: StoreKit, id: string): Promise<void> {
  const row = await kit.db.selectFrom('jobs').select('id').where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound(`job ${id}`);
}

export async function requeueTasks(
  kit: StoreKit,
  jobId: string,
  indexes: readonly number[],
): Promise<Task[]> {
  await kit.tx((db, now) => jobs.requeueChosenTasks(db, kit.kind, now, jobId, indexes));
  const rows = await kit.db
    .selectFrom('tasks')
    .selectAll()
    .where('job_id', '=', jobId)
    .where('idx', 'in', indexes)
    .orderBy('idx')
    .execute();
  return rows.map(taskFromRow);
}

export async function commandTasks(
  kit: StoreKit,
  jobId: string,
  indexes: readonly number[] | 'all',
  command: TaskCommand,
): Promise<Task[]> {
  await kit.tx((db, now) => taskCommands.commandTasks(db, kit.kind, now, jobId, indexes, command));
  let q = kit.db.selectFrom('tasks').selectAll().where('job_id', '=', jobId);
  if (indexes !== 'all') q = q.where('idx', 'in', indexes.length > 0 ? indexes : [-1]);
  const rows = await q.orderBy('idx').limit(MAX_PAGE).execute();
  return rows.map(taskFromRow);
}

export async function undeleteJob(kit: StoreKit, id: string): Promise<Job> {
  await kit.tx((db, now) => taskCommands.undeleteJob(db, kit.kind, now, id));
  return (await fetchJob(kit, id))!;
}

export async function readTaskLog(
  kit: StoreKit,
  jobId: string,
  index: number,
  query: LogQuery,
): Promise<{ attempt: number; chunks: TaskLogChunk[] }> {
  const task = await kit.db
    .selectFrom('tasks')
    .select('attempt')
    .where('job_id', '=', jobId)
    .where('idx', '=', index)
    .executeTakeFirst();
  if (!task) throw notFound(`task ${jobId}:${index}`);
  const attempt = query.attempt ?? num(task.attempt);
  const rows = await kit.db
    .selectFrom('task_logs')
    .select(['attempt', 'seq', 'at', 'stream', 'text'])
    .where('job_id', '=', jobId)
    .where('idx', '=', index)
    .where('attempt', '=', attempt)
    .where('seq', '>', query.after ?? 0)
    .orderBy('seq')
    .limit(Math.min(query.limit ?? MAX_PAGE, MAX_PAGE))
    .execute();
  return {
    attempt,
    chunks: rows.map((r) => ({
      attempt: num(r.attempt),
      seq: num(r.seq),
      at: num(r.at),
      stream: r.stream as TaskLogChunk['stream'],
      text: r.text,
    })),
  };
}

export async function updateJob(kit: StoreKit, id: string, changes: JobChanges): Promise<Job> {
  await kit.tx((db, now) => jobs.changeJob(db, kit.kind, now, id, changes));
  return (await fetchJob(kit, id))!;
}

export async function applyJobAction(
  kit: StoreKit,
  id: string,
  action: JobAction,
  reason?: string,
): Promise<Job> {
  await kit.tx((db, now) => jobs.applyAction(db, kit.kind, now, id, action, reason));
  return (await fetchJob(kit, id))!;
}

export async function releaseHold(
  kit: StoreKit,
  jobId: string,
  plugin: string,
  failure?: string,
): Promise<Job | undefined> {
  await kit.tx((db, now) => jobs.releaseHold(db, kit.kind, now, jobId, plugin, failure));
  return fetchJob(kit, jobId);
}

export async function setJobPluginData(
  kit: StoreKit,
  jobId: string,
  plugin: string,
  data: unknown,
): Promise<void> {
  await kit.tx((db) => jobs.setPluginData(db, kit.kind, jobId, plugin, data), { wakes: false });
}
