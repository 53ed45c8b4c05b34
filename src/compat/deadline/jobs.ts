import type { Principal } from '../../core/auth.js';
import { DroverError, invalid } from '../../core/errors.js';
import { jobChangesSchema, type JobChanges, type JobState } from '../../core/job-spec.js';
import { parseInput } from '../../core/validate.js';
import type { Job } from '../../core/types.js';
import type { Farm } from '../../manager/farm.js';
import type { HandlersOf } from '../../manager/http/serve.js';
import { MAX_PAGE } from '../../store/contract.js';
import { inDeadlineTerms, listOf, mapJobInfo } from './job-info.js';
import {
  deadlineJob,
  deadlineTask,
  PLUGIN_DATA_KEY,
  statesByName,
  type DeadlineSent,
} from './job-object.js';
import type { DeadlineRoutes } from './routes.js';
import {
  allPages,
  bodyOf,
  idsOf,
  jobAccess,
  notSupported,
  requiredString,
  success,
  yes,
  type Body,
} from './common.js';

/** Most jobs in one submission (`{"Jobs": […]}`). */
const MAX_JOBS_PER_POST = 100;
/** Most jobs one `GET /api/jobs?Details=true` answers (each with its tasks). */
const MAX_DETAILED_JOBS = 100;
/** Most jobs one `GET /api/jobs` answers. */
const MAX_JOBS_LISTED = 100_000;

export function jobHandlers(
  farm: Farm,
  /** Folders a user token's `AuxFiles` paths must be in (`--deadline-aux-root`). */
  auxRoots: readonly string[] = [],
): Pick<HandlersOf<DeadlineRoutes>, 'getJobs' | 'submitJobs' | 'jobCommand' | 'deleteJobs'> {
  const store = farm.store;
  const { ownJob, readJob, tasksOf } = jobAccess(store);

  async function submitOne(
    entry: unknown,
    where: string,
    principal: Principal | undefined,
    extraDependencies: string[],
  ): Promise<Job> {
    const e = bodyOf(entry);
    const auxPaths = auxPathsOf(e.AuxFiles, `${where}AuxFiles`);
    let mapped;
    try {
      mapped = mapJobInfo(e.JobInfo, e.PluginInfo);
    } catch (err) {
      throw prefixed(err, where);
    }
    const { submission, ignored } = mapped;
    // Without UserName the job belongs to whoever calls (Deadline: the service's account).
    if (submission.user === undefined && principal) submission.user = principal.name;
    if (extraDependencies.length > 0) {
      submission.dependencies = [
        ...((submission.dependencies as string[] | undefined) ?? []),
        ...extraDependencies,
      ];
    }
    // Copied before the job exists, so it carries them from its first commit (see
    // `src/manager/aux-files.ts`); removed again when the submission fails.
    let copied: string[] = [];
    if (auxPaths.length > 0) {
      if (!farm.auxFiles)
        throw invalid(`${where}AuxFiles`, 'this manager keeps no auxiliary files');
      copied = (
        await farm.auxFiles.copyPaths(principal, auxPaths, `${where}AuxFiles`, auxRoots)
      ).map((f) => f.ref);
      submission.auxFiles = copied;
    }
    let job: Job;
    try {
      job = await farm.submitJob(submission, principal);
    } catch (err) {
      await farm.auxFiles?.remove(copied);
      throw prefixed(inDeadlineTerms(err), where);
    }
    if (copied.length > 0) await farm.auxFiles?.claim(copied, job.id);
    // Kept verbatim so GET answers what was sent (Props.PlugInfo, Props.Chunk, Plug); the job
    // already exists, so a failure here leaves it without them rather than unsubmitted.
    const jobInfo = e.JobInfo as Record<string, unknown>;
    const sent: DeadlineSent = {
      plugin: typeof jobInfo.Plugin === 'string' ? jobInfo.Plugin : job.plugin,
      jobInfo,
      pluginInfo: (e.PluginInfo as Record<string, unknown> | undefined) ?? {},
      ignored,
    };
    await store.setJobPluginData(job.id, PLUGIN_DATA_KEY, sent);
    if (ignored.length > 0) {
      // In the job's history, so a wrangler sees what the submitter asked for in vain.
      await store.appendEvent({
        type: 'job.updated',
        jobId: job.id,
        data: {
          source: 'deadline',
          message: `Deadline keys Drover does not act on (kept as sent): ${ignored.join(', ')}`,
          ignoredKeys: ignored,
        },
      });
    }
    return (await store.fetchJob(job.id)) ?? job;
  }

  async function listAll(states?: readonly JobState[], all = false): Promise<Job[]> {
    return allPages(
      (offset) => store.listJobs({ ...(states ? { states } : {}), all, offset, limit: MAX_PAGE }),
      MAX_JOBS_LISTED,
    );
  }

  async function changeJob(job: Job, command: string, body: Body): Promise<'done' | 'unsupported'> {
    // Checked by the same schema as the native API's job changes.
    const update = (changes: Record<string, unknown>) =>
      farm.updateJob(job.id, parseInput(jobChangesSchema, changes));
    const listed = job.allowList.length > 0 ? job.allowList : job.denyList;
    const white = job.allowList.length > 0;
    const placement = (list: string[], allow: boolean): JobChanges =>
      allow ? { allowList: list, denyList: [] } : { allowList: [], denyList: list };
    const slaves = () => listOf(body.SlaveList, 'SlaveList') ?? [];
    const limit = () => {
      const n = Number(body.Limit);
      if (!Number.isInteger(n) || n < 0) throw invalid('Limit', 'must be a whole number ≥ 0');
      return n;
    };
    const flag = () => {
      if (body.WhiteListFlag === undefined) throw invalid('WhiteListFlag', 'is required');
      return yes(body.WhiteListFlag);
    };
    const actions: Record<string, (() => Promise<unknown>) | undefined> = {
      suspend: () => farm.jobAction(job.id, 'suspend'),
      // Drover suspends a job's queued tasks and lets rendering ones finish either way.
      suspendnonrendering: () => farm.jobAction(job.id, 'suspend'),
      resume: () => farm.jobAction(job.id, 'resume'),
      resumefailed: async () => {
        const failed = (await tasksOf(job.id)).filter((t) => t.state === 'failed');
        if (failed.length > 0)
          await farm.requeueTasks(
            job.id,
            failed.map((t) => t.index),
          );
      },
      requeue: () => farm.jobAction(job.id, 'requeue'),
      archive: () => farm.jobAction(job.id, 'archive'),
      pend: () => farm.jobAction(job.id, 'pend'),
      releasepending: () => farm.jobAction(job.id, 'release'),
      fail: () => farm.jobAction(job.id, 'fail'),
      // Every task done without rendering; the job completes as if they had rendered.
      complete: async () => {
        await store.commandTasks(job.id, 'all', 'complete');
        farm.signal.wake();
      },
      save: async () => {
        const changes = changesOf(job, body.Job);
        if (Object.keys(changes).length > 0) await update(changes);
      },
      setjobmachinelimit: () =>
        update({
          machineLimit: limit(),
          ...placement(
            slaves(),
            body.WhiteListFlag === undefined ? white : yes(body.WhiteListFlag),
          ),
        }),
      setjobmachinelimitmaximum: () => update({ machineLimit: limit() }),
      setjobmachinelimitlistedslaves: () => update(placement(slaves(), white)),
      addslavestojobmachinelimitlist: () =>
        update(placement([...new Set([...listed, ...slaves()])], white)),
      removeslavesfromjobmachinelimitlist: () => {
        const drop = new Set(slaves());
        return farm.updateJob(
          job.id,
          placement(
            listed.filter((w) => !drop.has(w)),
            white,
          ),
        );
      },
      setjobmachinelimitwhitelistflag: () => update(placement(listed, flag())),
    };
    const act = Object.hasOwn(actions, command) ? actions[command] : undefined;
    if (!act) return 'unsupported';
    await act();
    return 'done';
  }

  return {
    getJobs: async ({ query, reply }) => {
      if (yes(query.Statistics)) return notSupported(reply, 'Statistics=true');
      let jobs: Job[];
      if (query.JobID !== undefined) {
        const ids = idsOf(query.JobID, 'JobID');
        const found = await Promise.all(ids.map((id) => store.fetchJob(id)));
        const wantDeleted = yes(query.Deleted);
        jobs = found.filter(
          (j): j is Job => j !== undefined && (j.state === 'deleted') === wantDeleted,
        );
      } else if (yes(query.Deleted)) {
        jobs = await listAll(['deleted'], true);
      } else if (query.States !== undefined) {
        const states = (listOf(query.States, 'States') ?? []).flatMap((name) => {
          const key = name.toLowerCase();
          const s = Object.hasOwn(statesByName, key) ? statesByName[key] : undefined;
          if (!s)
            throw invalid(
              'States',
              `unknown state ${name}: Active, Suspended, Completed, Failed, Pending`,
            );
          return s;
        });
        jobs = await listAll(states);
      } else {
        jobs = await listAll();
      }
      if (yes(query.IdOnly)) return jobs.map((j) => j.id);
      // A queued job no worker can run says so in its pending reason (`Details`).
      jobs = await farm.pluginOffers.explain(jobs);
      if (yes(query.Details)) {
        // Each job's tasks and history: bounded to the jobs named (Deadline needs JobID too).
        if (query.JobID === undefined) throw invalid('JobID', 'is required with Details=true');
        if (jobs.length > MAX_DETAILED_JOBS) {
          throw invalid('JobID', `at most ${MAX_DETAILED_JOBS} jobs with Details=true`);
        }
        const details: Record<string, unknown> = {};
        for (const job of jobs) {
          details[job.id] = {
            Job: deadlineJob(job),
            Tasks: (await tasksOf(job.id)).map(deadlineTask),
            PendingReason: job.pendingReason,
            History: (await store.listEvents({ jobId: job.id, limit: 200 })).map((e) => ({
              Date: new Date(e.at).toISOString(),
              Type: e.type,
              Data: e.data,
            })),
          };
        }
        return details;
      }
      return jobs.map(deadlineJob);
    },

    submitJobs: async ({ body, principal }) => {
      const b = bodyOf(body);
      if (b.Jobs !== undefined) {
        if (!Array.isArray(b.Jobs) || b.Jobs.length === 0)
          throw invalid('Jobs', 'must be a non-empty list of jobs');
        if (b.Jobs.length > MAX_JOBS_PER_POST)
          throw invalid('Jobs', `at most ${MAX_JOBS_PER_POST} jobs per submission`);
        const dependent = yes(b.Dependent);
        const jobs: Job[] = [];
        for (const [i, entry] of (b.Jobs as unknown[]).entries()) {
          const previous = jobs[jobs.length - 1];
          const onPrevious =
            previous !== undefined && (dependent || yes((entry as Body | null)?.DependsOnPrevious));
          jobs.push(
            await submitOne(entry, `Jobs.${i}.`, principal, onPrevious ? [previous.id] : []),
          );
        }
        return yes(b.IdOnly) ? jobs.map((j) => ({ _id: j.id })) : jobs.map(deadlineJob);
      }
      const job = await submitOne(b, '', principal, []);
      // Kept free of true/false/null: one public submitter `eval`s this reply in Python.
      return yes(b.IdOnly) ? { _id: job.id } : deadlineJob(job);
    },

    jobCommand: async ({ body, principal, reply }) => {
      const b = bodyOf(body);
      const command = requiredString(b, 'Command').toLowerCase();
      const unsupportedCommands: Record<string, string> = {
        updatesubmissiondate: 'changing the submission date (Drover orders jobs by it)',
        import: 'importing jobs',
        setjobframerange: 'changing the frames of a submitted job',
        appendjobframerange: 'adding frames to a submitted job',
      };
      const what = Object.hasOwn(unsupportedCommands, command)
        ? unsupportedCommands[command]
        : undefined;
      if (what) return notSupported(reply, `${what} (${command})`);
      if (command === 'undelete') {
        // JobID or JobIDs; deleted jobs are not "own jobs" to `ownJob`: checked here.
        const ids = idsOf(b.JobIDs ?? b.JobID, b.JobIDs !== undefined ? 'JobIDs' : 'JobID');
        const jobs = await Promise.all(ids.map((id) => readJob(id)));
        for (const job of jobs) {
          if (principal && principal.role !== 'admin' && job.user !== principal.name) {
            throw new DroverError(
              'forbidden',
              `job ${job.id} belongs to ${job.user || 'nobody'}; ${principal.name} may change only its own jobs`,
            );
          }
        }
        for (const job of jobs) await store.undeleteJob(job.id);
        return success(reply);
      }
      const id = requiredString(b, 'JobID');
      const job = await ownJob(id, principal);
      if ((await changeJob(job, command, b)) === 'unsupported') {
        throw invalid('Command', `unknown command "${command.slice(0, 60)}"`);
      }
      return success(reply);
    },

    deleteJobs: async ({ query, principal, reply }) => {
      if (yes(query.Purge)) return notSupported(reply, 'Purge=true');
      const ids = idsOf(query.JobID, 'JobID');
      const jobs = await Promise.all(ids.map((id) => ownJob(id, principal)));
      for (const job of jobs) await farm.jobAction(job.id, 'delete');
      return success(reply);
    },
  };
}

/** `AuxFiles`: a list of paths on the manager's host (one path as a string is taken too). */
function auxPathsOf(value: unknown, field: string): unknown[] {
  if (value === undefined || value === null || value === '') return [];
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) throw invalid(field, 'must be a list of paths');
  return (value as unknown[]).filter((p) => p !== '' && p !== null);
}

/** `save`: the edited job object's fields Drover can change on a live job. */
function changesOf(job: Job, edited: unknown): Record<string, unknown> {
  if (!edited || typeof edited !== 'object') throw invalid('Job', 'must be a job object');
  const props = (edited as { Props?: unknown }).Props;
  if (!props || typeof props !== 'object') throw invalid('Job.Props', 'is required');
  const p = props as Record<string, unknown>;
  const changes: Record<string, unknown> = {};
  const fields: [string, keyof JobChanges, 'string' | 'int' | 'list'][] = [
    ['Name', 'name', 'string'],
    ['Batch', 'batchName', 'string'],
    ['Cmmt', 'comment', 'string'],
    ['Pri', 'priority', 'int'],
    ['Pool', 'pool', 'string'],
    ['SecPool', 'secondaryPool', 'string'],
    ['Grp', 'group', 'string'],
    ['Limits', 'limits', 'list'],
    ['MachLmt', 'machineLimit', 'int'],
  ];
  for (const [key, field, kind] of fields) {
    const v = p[key];
    if (v === undefined) continue;
    const where = `Job.Props.${key}`;
    if (kind === 'int') {
      const n = typeof v === 'string' ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n))
        throw invalid(where, 'must be a whole number');
      if (n !== job[field]) changes[field] = n;
    } else if (kind === 'list') {
      const list = listOf(v, where) ?? [];
      if (list.join(',') !== (job[field] as string[]).join(',')) changes[field] = list;
    } else {
      if (typeof v !== 'string') throw invalid(where, 'must be a string');
      if (v !== job[field]) changes[field] = v;
    }
  }
  if (p.ListedSlaves !== undefined || p.White !== undefined) {
    const listed = listOf(p.ListedSlaves, 'Job.Props.ListedSlaves') ?? [];
    const white = p.White === undefined ? job.allowList.length > 0 : yes(p.White);
    const allow = white ? listed : [];
    const deny = white ? [] : listed;
    if (allow.join(',') !== job.allowList.join(',')) changes.allowList = allow;
    if (deny.join(',') !== job.denyList.join(',')) changes.denyList = deny;
  }
  return changes;
}

/** An error about one job of several, its key prefixed (`Jobs.1.JobInfo.Priority`). */
function prefixed(err: unknown, where: string): unknown {
  if (where === '' || !(err instanceof DroverError) || err.code !== 'invalid_input') return err;
  const field = err.field ?? 'body';
  const message = err.message.startsWith(`${field}: `)
    ? err.message.slice(field.length + 2)
    : err.message;
  return invalid(`${where}${field}`, message);
}
