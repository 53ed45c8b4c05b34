import { invalid, notFound } from '../../core/errors.js';
import { uploadAuxFile } from '../aux-files.js';
import type { Farm } from '../farm.js';
import type { Handlers } from '../http/serve.js';

type JobHandlers = Pick<
  Handlers,
  | 'submitJob'
  | 'listJobs'
  | 'getJob'
  | 'updateJob'
  | 'jobAction'
  | 'listTasks'
  | 'requeueTasks'
  | 'taskLog'
  | 'uploadAuxFile'
>;

/** Jobs and their tasks. Ownership (a user acts on its own jobs) is the contract's `owner`. */
export function jobHandlers(farm: Farm): JobHandlers {
  const store = farm.store;
  return {
    submitJob: async ({ body, principal, headers }) => {
      // Auxiliary files: uploads of this user's (an admin's: anyone's), within the bounds.
      if (body.auxFiles?.length) {
        if (!farm.auxFiles) throw invalid('auxFiles', 'this manager keeps no auxiliary files');
        await farm.auxFiles.check(principal, body.auxFiles, 'auxFiles');
      }
      const job = await farm.submitJob(body, principal, {
        ...(headers['idempotency-key'] ? { idempotencyKey: headers['idempotency-key'] } : {}),
      });
      // Kept while the job may run; house cleaning removes them after (`AuxFileStore.clean`).
      if (body.auxFiles?.length) await farm.auxFiles?.claim(body.auxFiles, job.id);
      return { job };
    },

    uploadAuxFile: ({ body, principal }) => uploadAuxFile(farm, principal, body),

    listJobs: async ({ query: q }) => ({
      jobs: await farm.pluginOffers.explain(
        await store.listJobs({
          ...(q.state ? { states: q.state } : {}),
          ...(q.user ? { user: q.user } : {}),
          limit: q.limit,
          offset: q.offset,
          all: q.all === 'true',
        }),
      ),
    }),

    getJob: async ({ params: { id } }) => {
      const job = await store.fetchJob(id);
      if (!job) throw notFound(`job ${id}`);
      // A queued job no worker can run says so (`no worker offers plugin MayaBatch`).
      return { job: (await farm.pluginOffers.explain([job]))[0] ?? job };
    },

    updateJob: async ({ params: { id }, body }) => ({ job: await farm.updateJob(id, body) }),

    jobAction: async ({ params: { id }, body }) => ({ job: await farm.jobAction(id, body.action) }),

    listTasks: async ({ params: { id }, query }) => ({ tasks: await store.listTasks(id, query) }),

    requeueTasks: async ({ params: { id }, body }) => ({
      tasks: await farm.requeueTasks(id, [...new Set(body.tasks)]),
    }),

    taskLog: ({ params: { id, index }, query }) => store.readTaskLog(id, index, query),
  };
}
