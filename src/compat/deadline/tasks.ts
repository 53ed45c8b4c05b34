import { invalid } from '../../core/errors.js';
import type { Job, Task } from '../../core/types.js';
import type { Farm } from '../../manager/farm.js';
import type { HandlersOf } from '../../manager/http/serve.js';
import { deadlineTask, sentOf } from './job-object.js';
import type { DeadlineRoutes } from './routes.js';
import { bodyOf, jobAccess, notSupported, requiredString, success, yes } from './common.js';

/** Tasks of a job read for reports. */
const MAX_REPORT_TASKS = 1000;

export function taskHandlers(
  farm: Farm,
): Pick<
  HandlersOf<DeadlineRoutes>,
  'getTasks' | 'taskCommand' | 'getJobReports' | 'getTaskReports'
> {
  const store = farm.store;
  const { ownJob, readJob, tasksOf } = jobAccess(store);

  return {
    getTasks: async ({ query }) => {
      if (query.JobID === undefined) throw invalid('JobID', 'is required');
      const job = await readJob(query.JobID);
      const tasks = await tasksOf(job.id);
      if (query.TaskID !== undefined) {
        const n = Number(query.TaskID);
        const task = Number.isInteger(n) ? tasks.find((t) => t.index === n) : undefined;
        if (!task) throw invalid('TaskID', `job ${job.id} has no task ${query.TaskID}`);
        return deadlineTask(task);
      }
      if (yes(query.IdOnly)) return tasks.map((t) => t.index);
      return { ID: job.id, Tasks: tasks.map(deadlineTask) };
    },

    taskCommand: async ({ body, principal, reply }) => {
      const b = bodyOf(body);
      const command = requiredString(b, 'Command').toLowerCase();
      const id = requiredString(b, 'JobID');
      const job = await ownJob(id, principal);
      const tasks = await tasksOf(job.id);
      const indexes = taskListOf(b.TaskList, tasks);
      if (command === 'requeue') {
        await farm.requeueTasks(job.id, indexes);
      } else if (command === 'resumefailed') {
        const failed = new Set(tasks.filter((t) => t.state === 'failed').map((t) => t.index));
        const chosen = indexes.filter((i) => failed.has(i));
        if (chosen.length > 0) await farm.requeueTasks(job.id, chosen);
      } else if (
        command === 'complete' ||
        command === 'resume' ||
        command === 'suspend' ||
        command === 'fail'
      ) {
        const all = b.TaskList === undefined || b.TaskList === null || b.TaskList === '';
        await store.commandTasks(job.id, all ? 'all' : indexes, command);
        farm.signal.wake();
      } else if (command === 'pend' || command === 'releasepending') {
        return notSupported(
          reply,
          `the task command ${command}: Drover holds whole jobs, not single tasks (use the job command)`,
        );
      } else {
        throw invalid('Command', `unknown command "${command.slice(0, 60)}"`);
      }
      return success(reply);
    },

    getJobReports: async ({ query }) => {
      if (query.JobID === undefined) throw invalid('JobID', 'is required');
      const job = await readJob(query.JobID);
      const data = (query.Data ?? 'all').toLowerCase();
      if (data === 'history') {
        const events = await store.listEvents({ jobId: job.id, limit: 1000 });
        return events.map((e) => ({
          _id: `${job.id}_event_${e.seq}`,
          Job: job.id,
          Date: new Date(e.at).toISOString(),
          Title: e.type,
          Slave: e.worker ?? '',
          Task: e.taskIndex ?? -1,
          Data: e.data,
        }));
      }
      if (
        !['all', 'log', 'error', 'requeue', 'allcontents', 'logcontents', 'errorcontents'].includes(
          data,
        )
      ) {
        throw invalid('Data', 'must be all, log, error, requeue, history or allcontents');
      }
      if (data === 'requeue') return [];
      const tasks = (await tasksOf(job.id)).filter((t) => t.attempt > 0).slice(0, MAX_REPORT_TASKS);
      const reports = [];
      for (const task of tasks) {
        const r = await report(job, task, task.attempt, data.endsWith('contents'));
        if (data.startsWith('log') && r.Type !== 0) continue;
        if (data.startsWith('error') && r.Type !== 1) continue;
        reports.push(r);
      }
      return reports;
    },

    getTaskReports: async ({ query }) => {
      if (query.JobID === undefined) throw invalid('JobID', 'is required');
      if (query.TaskID === undefined) throw invalid('TaskID', 'is required');
      const job = await readJob(query.JobID);
      const n = Number(query.TaskID);
      const task = Number.isInteger(n)
        ? (await tasksOf(job.id)).find((t) => t.index === n)
        : undefined;
      if (!task) throw invalid('TaskID', `job ${job.id} has no task ${query.TaskID}`);
      const contents = (query.Data ?? '').toLowerCase().endsWith('contents');
      const reports = [];
      for (let attempt = 1; attempt <= Math.min(task.attempt, 100); attempt++) {
        reports.push(await report(job, task, attempt, contents));
      }
      return reports;
    },
  };

  /** One attempt's log as a Deadline report: Type 1 (error) when that attempt failed. */
  async function report(job: Job, task: Task, attempt: number, contents: boolean) {
    const log = await store.readTaskLog(job.id, task.index, { attempt });
    const last = attempt === task.attempt;
    const failed = last ? task.state === 'failed' : true;
    const first = task.frames[0] ?? 0;
    return {
      _id: `${job.id}_${task.index}_${attempt}`,
      Job: job.id,
      Type: failed ? 1 : 0,
      Date: new Date(log.chunks[log.chunks.length - 1]?.at ?? job.submittedAt).toISOString(),
      Slave: last ? (task.worker ?? '') : '',
      Task: task.index,
      Title: failed ? 'Error' : 'Log',
      JobName: job.name,
      JobUser: job.user,
      Plugin: sentOf(job)?.plugin ?? job.plugin,
      Frames: `${first}-${task.frames[task.frames.length - 1] ?? first}`,
      ...(contents ? { Contents: log.chunks.map((c) => c.text).join('') } : {}),
    };
  }
}

/** `TaskList`: one integer, a list, a comma string, or absent (= every task). */
function taskListOf(value: unknown, tasks: Task[]): number[] {
  if (value === undefined || value === null || value === '') return tasks.map((t) => t.index);
  const raw: unknown[] = Array.isArray(value)
    ? (value as unknown[])
    : typeof value === 'string'
      ? value.split(',')
      : [value];
  const known = new Set(tasks.map((t) => t.index));
  return [
    ...new Set(
      raw.map((v) => {
        const n = typeof v === 'string' ? Number(v.trim()) : v;
        if (typeof n !== 'number' || !Number.isInteger(n) || !known.has(n)) {
          throw invalid('TaskList', `no task ${JSON.stringify(v)?.slice(0, 40)} in this job`);
        }
        return n;
      }),
    ),
  ];
}
