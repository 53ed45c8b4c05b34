import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type {
  HeartbeatReply,
  OkReply,
  RegisterReply,
  WorkReply,
  WorkerListReply,
  WorkerReply,
} from '../../core/api.js';
import { notFound } from '../../core/errors.js';
import {
  heartbeatSchema,
  logAppendSchema,
  taskReportSchema,
  workRequestSchema,
  workerRegistrationSchema,
} from '../../core/worker-protocol.js';
import type { Farm } from '../farm.js';
import { parseInput } from '../../core/validate.js';

const nameParams = z.object({ name: z.string().min(1).max(128) });
const enabledBody = z.object({ enabled: z.boolean() }).strict();

export function workerRoutes(app: FastifyInstance, farm: Farm): void {
  const store = farm.store;

  app.get('/workers', async (): Promise<WorkerListReply> => ({
    workers: await store.listWorkers(),
  }));

  app.get('/workers/:name', async (req): Promise<WorkerReply> => {
    const { name } = parseInput(nameParams, req.params, 'params');
    const worker = await store.fetchWorker(name);
    if (!worker) throw notFound(`worker ${name}`);
    return { worker };
  });

  app.patch('/workers/:name', async (req): Promise<WorkerReply> => {
    const { name } = parseInput(nameParams, req.params, 'params');
    const { enabled } = parseInput(enabledBody, req.body);
    const worker = await store.setWorkerEnabled(name, enabled);
    farm.signal.wake();
    return { worker };
  });

  // ── the worker protocol ──

  app.post('/workers/register', async (req): Promise<RegisterReply> => {
    const registration = parseInput(workerRegistrationSchema, req.body);
    const worker = await store.registerWorker(registration);
    farm.paths.forgetWorker(worker.name);
    farm.signal.wake();
    return {
      worker,
      heartbeatIntervalMs: farm.settings.heartbeatIntervalMs,
      leaseTtlMs: farm.settings.leaseTtlMs,
    };
  });

  app.post('/workers/:name/heartbeat', async (req): Promise<HeartbeatReply> => {
    const { name } = parseInput(nameParams, req.params, 'params');
    const hb = parseInput(heartbeatSchema, req.body);
    const reply = await store.heartbeat(name, hb);
    return { ...reply, heartbeatIntervalMs: farm.settings.heartbeatIntervalMs };
  });

  app.post('/workers/:name/work', async (req): Promise<WorkReply> => {
    const { name } = parseInput(nameParams, req.params, 'params');
    const body = parseInput(workRequestSchema, req.body);
    // The worker hanging up ends the long-poll, so no task is claimed for a gone socket.
    const hangUp = new AbortController();
    const onClose = () => hangUp.abort();
    req.raw.socket.once('close', onClose);
    try {
      const r = await farm.work(name, body.report, body.claim, body.waitMs, hangUp.signal);
      return {
        reportError: r.reportError ? { code: 'lease_lost', message: r.reportError.message } : null,
        task: r.task,
      };
    } finally {
      req.raw.socket.off('close', onClose);
    }
  });

  app.post('/workers/:name/report', async (req): Promise<OkReply> => {
    const { name } = parseInput(nameParams, req.params, 'params');
    const report = parseInput(taskReportSchema, req.body);
    await store.reportTask(name, report);
    farm.signal.wake();
    return { ok: true };
  });

  app.post('/workers/:name/logs', async (req): Promise<OkReply> => {
    const { name } = parseInput(nameParams, req.params, 'params');
    const append = parseInput(logAppendSchema, req.body);
    await store.appendTaskLog(name, append);
    return { ok: true };
  });

  app.post('/workers/:name/stopped', async (req): Promise<WorkerReply> => {
    const { name } = parseInput(nameParams, req.params, 'params');
    const worker = await store.markWorkerStopped(name);
    farm.signal.wake();
    return { worker };
  });
}
