import { auxNameOf, auxRefsOf } from '../../manager/aux-files.js';
import type { Job, JobState, Task, TaskState, Worker, WorkerState } from '../../core/types.js';

/**
 * Drover's jobs, tasks and workers in the shapes Deadline 10's Web Service answers (captured
 * replies of Deadline 10.1–10.3): what pipeline tools read back after submitting.
 */

/** What the Web Service keeps of a job as sent (in the job's `pluginData.deadline`). */
export interface DeadlineSent {
  /** The Deadline plugin name as sent (`CommandScript`, `MayaBatch`). */
  plugin: string;
  jobInfo: Record<string, unknown>;
  pluginInfo: Record<string, unknown>;
  /** Keys Drover does not act on. */
  ignored: string[];
}

export const PLUGIN_DATA_KEY = 'deadline';

/** Deadline's job `Stat`: 0 unknown, 1 active (queued or rendering), 2 suspended, 3 completed, 4 failed, 6 pending. */
export const jobStat: Record<JobState, number> = {
  queued: 1,
  rendering: 1,
  suspended: 2,
  completed: 3,
  failed: 4,
  pending: 6,
  // Deadline no longer lists archived or deleted jobs among the live ones: "unknown".
  archived: 0,
  deleted: 0,
};

/** Deadline's `States=` names → Drover states. */
export const statesByName: Record<string, JobState[]> = {
  active: ['queued', 'rendering'],
  suspended: ['suspended'],
  completed: ['completed'],
  failed: ['failed'],
  pending: ['pending'],
};

/** Task `Stat`: 1 unknown, 2 queued, 3 suspended, 4 rendering, 5 completed, 6 failed, 8 pending. */
export const taskStat: Record<TaskState, number> = {
  queued: 2,
  suspended: 3,
  rendering: 4,
  completed: 5,
  failed: 6,
  pending: 8,
};

/** Worker `Stat`: 0 unknown, 1 rendering, 2 idle, 3 offline, 4 stalled. */
export const workerStat: Record<WorkerState, number> = {
  rendering: 1,
  idle: 2,
  offline: 3,
  stalled: 4,
  disabled: 3,
};

/** `OnComp`: 0 archive, 1 delete, 2 nothing. */
const onComp = { archive: 0, delete: 1, nothing: 2 } as const;

/** Deadline's "unset" date. */
export const NO_DATE = '0001-01-01T00:00:00Z';

export function dateOf(ms: number | null): string {
  return ms === null ? NO_DATE : new Date(ms).toISOString();
}

/** A Deadline dictionary value is text. */
function textOf(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map(textOf).join(',');
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value) ?? '';
}

export function sentOf(job: Job): DeadlineSent | undefined {
  const sent = job.pluginData[PLUGIN_DATA_KEY];
  if (!sent || typeof sent !== 'object') return undefined;
  return sent as DeadlineSent;
}

/** The job object of `GET /api/jobs` and of a submission's reply. */
export function deadlineJob(job: Job): Record<string, unknown> {
  const sent = sentOf(job);
  const info = sent?.jobInfo ?? {};
  const ex: Record<string, string> = {};
  const exDic: Record<string, string> = {};
  for (const [k, v] of Object.entries(job.extraInfo)) {
    const m = /^ExtraInfo([0-9])$/.exec(k);
    if (m) ex[`Ex${m[1]}`] = v;
    else exDic[k] = v;
  }
  const plugInfo: Record<string, string> = {};
  for (const [k, v] of Object.entries(sent?.pluginInfo ?? job.pluginInfo)) plugInfo[k] = textOf(v);
  const sentChunk = Number(textOf(info.ChunkSize));
  const listed = job.allowList.length > 0 ? job.allowList : job.denyList;
  const c = job.counts;
  return {
    _id: job.id,
    Stat: jobStat[job.state],
    Plug: sent?.plugin ?? job.plugin,
    Mach: job.machineName,
    Date: dateOf(job.submittedAt),
    DateStart: dateOf(job.startedAt),
    DateComp: dateOf(job.finishedAt),
    IsSub: true,
    Purged: false,
    ComFra: Math.min(job.frameCount, c.completed * job.chunkSize),
    CompletedChunks: c.completed,
    QueuedChunks: c.queued,
    SuspendedChunks: c.suspended,
    RenderingChunks: c.rendering,
    FailedChunks: c.failed,
    PendingChunks: c.pending,
    SnglTskPrg: '0 %',
    Errs: job.errorCount,
    OutDir: job.outputDirectories,
    OutFile: job.outputFilenames,
    TileFile: [],
    // Deadline shows the file names (its copies in the job's folder).
    Aux: auxRefsOf(job.environment).map(auxNameOf),
    Bad: job.badWorkers,
    DataSize: -1,
    ExtraElements: [],
    Props: {
      Name: job.name,
      Batch: job.batchName,
      User: job.user,
      Region: job.regions[0] ?? '',
      Cmmt: job.comment,
      Dept: job.department,
      // As submitted: validators split it on `,` and `-` again.
      Frames: job.frames,
      Chunk: Number.isInteger(sentChunk) && sentChunk > 0 ? sentChunk : job.chunkSize,
      Tasks: job.taskCount,
      Grp: job.group,
      Pool: job.pool,
      SecPool: job.secondaryPool,
      Pri: job.priority,
      Dep: job.dependencies.map((id) => ({
        JobID: id,
        OverrideFrameOffsets: false,
        StartOffset: 0,
        EndOffset: 0,
        Notes: '',
      })),
      DepFrame: job.frameDependent,
      DepFrameStart: 0,
      DepFrameEnd: 0,
      DepComp: true,
      DepDel: job.resumeOnDeletedDependencies,
      DepFail: job.resumeOnFailedDependencies,
      DepPer: -1.0,
      Conc: 1,
      ConcLimt: true,
      OnComp: onComp[job.onComplete],
      Timeout: job.taskTimeoutSeconds,
      MinTime: 0,
      MaxTime: 0,
      NoBad: job.badWorkerErrors === 0,
      JobFailOvr: true,
      JobFailErr: job.jobErrorLimit,
      TskFailOvr: true,
      TskFailErr: job.taskRetries + 1,
      Limits: job.limits,
      ListedSlaves: listed,
      White: job.allowList.length > 0,
      MachLmt: job.machineLimit,
      PrJobScrp: '',
      PoJobScrp: '',
      PrTskScrp: '',
      PoTskScrp: '',
      PlugInfo: plugInfo,
      // Without Drover's own variables (DROVER_AUX_FILES, …): clients copy Env into the
      // next job they submit, which may not set them.
      Env: Object.fromEntries(
        Object.entries(job.environment).filter(([k]) => !/^DROVER_/i.test(k)),
      ),
      EnvOnly: false,
      EventOI: job.eventOptIns,
      ...ex,
      ExDic: exDic,
    },
  };
}

/** The task object of `GET /api/tasks`. */
export function deadlineTask(task: Task): Record<string, unknown> {
  const first = task.frames[0] ?? 0;
  const last = task.frames[task.frames.length - 1] ?? first;
  return {
    _id: `${task.jobId}_${task.index}`,
    JobID: task.jobId,
    TaskID: task.index,
    Frames: `${first}-${last}`,
    Slave: task.worker ?? '',
    Stat: taskStat[task.state],
    Prog: `${Math.round(task.progress)} %`,
    RndStat: task.status,
    Errs: task.errorCount,
    Start: dateOf(task.startedAt),
    StartRen: dateOf(task.startedAt),
    Comp: dateOf(task.finishedAt),
  };
}

/** The worker (Deadline: slave) info of `GET /api/slaves?Data=info`. */
export function deadlineWorkerInfo(worker: Worker): Record<string, unknown> {
  const running = worker.runningTasks[0] ?? '';
  return {
    Name: worker.name,
    Stat: workerStat[worker.state],
    JobId: running.split(':')[0] ?? '',
    JobName: '',
    Reg: worker.region,
    Host: worker.name,
    IP: '',
    RAM: worker.capabilities.memoryMb * 1024 * 1024,
    OS: worker.capabilities.os,
    Procs: worker.capabilities.cpus,
    Grps: worker.groups.join(','),
    Pools: worker.pools.join(','),
    Ver: worker.version,
  };
}

/** The worker settings of `GET /api/slaves?Data=settings`. */
export function deadlineWorkerSettings(worker: Worker): Record<string, unknown> {
  return {
    Name: worker.name,
    Enable: worker.enabled,
    Pools: worker.pools,
    Grps: worker.groups,
    Region: worker.region,
    Conc: worker.slots,
  };
}
