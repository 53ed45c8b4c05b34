import { invalid } from '../../core/errors.js';
import { jobStates, type JobAction } from '../../core/job-spec.js';
import type { Job, Task } from '../../core/types.js';
import { connect, type ConnectionOptions } from '../connection.js';
import { formatDuration, formatTime, printJson, printTable, terminalSafe } from '../output.js';

export interface ListOptions extends ConnectionOptions {
  json?: boolean;
}

export interface JobsOptions extends ListOptions {
  state?: string;
  user?: string;
  limit?: number;
  all?: boolean;
}

function progress(job: Job): string {
  return `${job.counts.completed}/${job.taskCount}`;
}

export async function jobs(o: JobsOptions): Promise<void> {
  const states = o.state?.split(',').filter(Boolean);
  const bad = states?.find((s) => !(jobStates as readonly string[]).includes(s));
  if (bad !== undefined)
    throw invalid('--state', `"${bad}" is not a job state (${jobStates.join(', ')})`);
  const list = await connect(o).listJobs({
    ...(states ? { state: states } : {}),
    ...(o.user ? { user: o.user } : {}),
    ...(o.limit ? { limit: o.limit } : {}),
    ...(o.all ? { all: true } : {}),
  });
  if (o.json) return printJson(list);
  printTable(
    ['ID', 'NAME', 'USER', 'PLUGIN', 'STATE', 'DONE', 'ERR', 'PRI', 'POOL', 'GROUP', 'SUBMITTED'],
    list.map((j) => [
      j.id,
      j.name,
      j.user,
      j.plugin,
      j.state,
      progress(j),
      String(j.errorCount),
      String(j.priority),
      j.pool,
      j.group,
      formatTime(j.submittedAt),
    ]),
  );
}

export async function job(id: string, o: ListOptions): Promise<void> {
  const j = await connect(o).getJob(id);
  if (o.json) return printJson(j);
  const kv = (obj: Record<string, string>) =>
    Object.entries(obj)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ') || '-';
  const rows: Array<[string, string]> = [
    ['id', j.id],
    ['name', j.name],
    ['batch', j.batchName || '-'],
    ['user', j.user || '-'],
    ['plugin', j.plugin],
    ['state', j.state + (j.pendingReason ? ` (${j.pendingReason})` : '')],
    ['frames', `${j.frames} (${j.frameCount} frames, chunk ${j.chunkSize}, ${j.taskCount} tasks)`],
    [
      'tasks',
      Object.entries(j.counts)
        .filter(([, n]) => n > 0)
        .map(([s, n]) => `${s} ${n}`)
        .join(', '),
    ],
    ['errors', String(j.errorCount)],
    ['priority', String(j.priority)],
    ['pool', j.pool + (j.secondaryPool ? ` (secondary ${j.secondaryPool})` : '')],
    ['group', j.group],
    ['regions', j.regions.join(', ') || 'any'],
    ['limits', j.limits.join(', ') || '-'],
    ['machine limit', j.machineLimit === 0 ? 'none' : String(j.machineLimit)],
    ['dependencies', j.dependencies.join(', ') || '-'],
    ['output dirs', j.outputDirectories.join(', ') || '-'],
    ['extra info', kv(j.extraInfo)],
    ['bad workers', j.badWorkers.join(', ') || '-'],
    ['submitted', formatTime(j.submittedAt)],
    ['started', formatTime(j.startedAt)],
    ['finished', formatTime(j.finishedAt)],
  ];
  for (const [plugin, data] of Object.entries(j.pluginData)) {
    const outcomes = (data as { outcomes?: Array<{ directory: string; outcome: string }> })
      .outcomes;
    if (outcomes) for (const o of outcomes) rows.push([plugin, `${o.outcome}: ${o.directory}`]);
    else rows.push([plugin, JSON.stringify(data)]);
  }
  if (j.startedAt !== null) {
    rows.push(['elapsed', formatDuration((j.finishedAt ?? Date.now()) - j.startedAt)]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(
    rows.map(([k, v]) => `${terminalSafe(k).padEnd(width)}  ${terminalSafe(v)}`).join('\n') + '\n',
  );
}

export async function tasks(id: string, o: ListOptions): Promise<void> {
  const client = connect(o);
  const all: Task[] = [];
  for (let offset = 0; ;) {
    const page = await client.listTasks(id, { offset, limit: 1000 });
    all.push(...page);
    if (page.length < 1000) break;
    offset = page[page.length - 1]!.index + 1;
  }
  if (o.json) return printJson(all);
  printTable(
    ['TASK', 'FRAMES', 'STATE', 'WORKER', 'ATTEMPT', 'ERR', 'PROGRESS', 'TIME'],
    all.map((t) => [
      String(t.index),
      t.frames.length > 4 ? `${t.frames[0]}…${t.frames[t.frames.length - 1]}` : t.frames.join(','),
      t.state,
      t.worker ?? '-',
      String(t.attempt),
      String(t.errorCount),
      `${Math.round(t.progress)}%`,
      t.startedAt === null ? '-' : formatDuration((t.finishedAt ?? Date.now()) - t.startedAt),
    ]),
  );
}

export interface ActionOptions extends ConnectionOptions {
  tasks?: string;
  json?: boolean;
}

/** suspend, resume, requeue (whole job or `--tasks 0,3`), fail, delete, archive, pend, release. */
export async function jobAction(action: JobAction, ids: string[], o: ActionOptions): Promise<void> {
  const client = connect(o);
  for (const id of ids) {
    if (action === 'requeue' && o.tasks) {
      const indexes = o.tasks.split(',').map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 0) throw invalid('--tasks', `"${s}" is not a task number`);
        return n;
      });
      const t = await client.requeueTasks(id, indexes);
      if (o.json) printJson(t);
      else process.stdout.write(`${terminalSafe(id)}: requeued tasks ${indexes.join(', ')}\n`);
      continue;
    }
    const j = await client.jobAction(id, action);
    if (o.json) printJson(j);
    else process.stdout.write(`${terminalSafe(j.id)}: ${j.state}\n`);
  }
}
