import { DroverError, notFound } from '../../core/errors.js';
import { fetchAuxFileChunk } from '../aux-files.js';
import type { Farm } from '../farm.js';
import type { Handlers } from '../http/serve.js';

type WorkerHandlers = Pick<
  Handlers,
  | 'listWorkers'
  | 'getWorker'
  | 'setWorkerEnabled'
  | 'registerWorker'
  | 'heartbeat'
  | 'work'
  | 'reportTask'
  | 'appendLogs'
  | 'workerStopped'
  | 'fetchAuxFile'
>;

/** Render nodes as the farm sees them, and the worker protocol. */
export function workerHandlers(farm: Farm): WorkerHandlers {
  const store = farm.store;
  return {
    listWorkers: async () => ({ workers: await store.listWorkers() }),

    getWorker: async ({ params: { name } }) => {
      const worker = await store.fetchWorker(name);
      if (!worker) throw notFound(`worker ${name}`);
      return { worker };
    },

    setWorkerEnabled: async ({ params: { name }, body }) => {
      const worker = await store.setWorkerEnabled(name, body.enabled);
      farm.signal.wake();
      return { worker };
    },

    // ── the worker protocol ──

    registerWorker: async ({ body }) => {
      const worker = await store.registerWorker(body);
      farm.paths.forgetWorker(worker.name);
      farm.signal.wake();
      return {
        worker,
        heartbeatIntervalMs: farm.settings.heartbeatIntervalMs,
        leaseTtlMs: farm.settings.leaseTtlMs,
      };
    },

    heartbeat: async ({ params: { name }, body }) => {
      const reply = await store.heartbeat(name, body);
      return { ...reply, heartbeatIntervalMs: farm.settings.heartbeatIntervalMs };
    },

    work: async ({ params: { name }, body, request }) => {
      // The worker hanging up ends the long-poll, so no task is claimed for a gone socket.
      const hangUp = new AbortController();
      const onClose = () => hangUp.abort();
      request.raw.socket.once('close', onClose);
      try {
        const r = await farm.work(name, body.report, body.claim, body.waitMs, hangUp.signal);
        return {
          reportError: r.reportError
            ? { code: 'lease_lost', message: r.reportError.message }
            : null,
          task: r.task,
        };
      } finally {
        request.raw.socket.off('close', onClose);
      }
    },

    reportTask: async ({ params: { name }, body }) => {
      try {
        await store.reportTask(name, body);
      } catch (err) {
        if (err instanceof DroverError && err.code === 'lease_lost')
          farm.metrics.report(body.outcome, true);
        throw err;
      }
      farm.metrics.report(body.outcome, false);
      farm.signal.wake();
      return { ok: true };
    },

    appendLogs: async ({ params: { name }, body }) => {
      await store.appendTaskLog(name, body);
      return { ok: true };
    },

    fetchAuxFile: ({ params: { name, job, index }, query }) =>
      fetchAuxFileChunk(farm, name, job, index, query.offset),

    workerStopped: async ({ params: { name } }) => {
      const worker = await store.markWorkerStopped(name);
      farm.signal.wake();
      return { worker };
    },
  };
}
