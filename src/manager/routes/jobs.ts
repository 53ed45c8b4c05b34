import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { JobListReply, JobReply, TaskListReply, TaskLogReply } from '../../core/api.js';
import { notFound } from '../../core/errors.js';
import { jobActions, jobChangesSchema, jobStates } from '../../core/job-spec.js';
import type { Principal } from '../../core/auth.js';
import { assertMayChangeJob } from '../auth.js';
import type { Farm } from '../farm.js';
import { parseInput } from '../../core/validate.js';

const idParams = z.object({ id: z.string().min(1).max(64) });
const taskParams = idParams.extend({ index: z.coerce.number().int().min(0).max(10_000_000) });
const listQuery = z.object({
  state: z
    .string()
    .max(200)
    .transform((s) => s.split(',').filter(Boolean))
    .pipe(z.array(z.enum(jobStates)))
    .optional(),
  user: z.string().max(128).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
  all: z.enum(['true', 'false']).optional(),
});
const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(1000),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
});
const logQuery = z.object({
  attempt: z.coerce.number().int().min(1).max(1_000_000).optional(),
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(1000),
});
const actionBody = z.object({ action: z.enum(jobActions) }).strict();
const requeueBody = z
  .object({ tasks: z.array(z.number().int().min(0)).min(1).max(100_000) })
  .strict();

export function jobRoutes(app: FastifyInstance, farm: Farm): void {
  const store = farm.store;
  const mayChange = async (principal: Principal | undefined, id: string) => {
    if (!principal || principal.role === 'admin') return;
    const job = await store.fetchJob(id);
    if (!job) throw notFound(`job ${id}`);
    assertMayChangeJob(principal, job);
  };

  app.post('/jobs', async (req, reply): Promise<JobReply> => {
    const job = await farm.submitJob(req.body, req.principal);
    reply.status(201);
    return { job };
  });

  app.get('/jobs', async (req): Promise<JobListReply> => {
    const q = parseInput(listQuery, req.query, 'query');
    const jobs = await store.listJobs({
      ...(q.state ? { states: q.state } : {}),
      ...(q.user ? { user: q.user } : {}),
      limit: q.limit,
      offset: q.offset,
      all: q.all === 'true',
    });
    return { jobs };
  });

  app.get('/jobs/:id', async (req): Promise<JobReply> => {
    const { id } = parseInput(idParams, req.params, 'params');
    const job = await store.fetchJob(id);
    if (!job) throw notFound(`job ${id}`);
    return { job };
  });

  app.patch('/jobs/:id', async (req): Promise<JobReply> => {
    const { id } = parseInput(idParams, req.params, 'params');
    const changes = parseInput(jobChangesSchema, req.body);
    await mayChange(req.principal, id);
    return { job: await farm.updateJob(id, changes) };
  });

  app.post('/jobs/:id/actions', async (req): Promise<JobReply> => {
    const { id } = parseInput(idParams, req.params, 'params');
    const { action } = parseInput(actionBody, req.body);
    await mayChange(req.principal, id);
    return { job: await farm.jobAction(id, action) };
  });

  app.get('/jobs/:id/tasks', async (req): Promise<TaskListReply> => {
    const { id } = parseInput(idParams, req.params, 'params');
    const page = parseInput(pageQuery, req.query, 'query');
    return { tasks: await store.listTasks(id, page) };
  });

  app.post('/jobs/:id/tasks/requeue', async (req): Promise<TaskListReply> => {
    const { id } = parseInput(idParams, req.params, 'params');
    const { tasks } = parseInput(requeueBody, req.body);
    await mayChange(req.principal, id);
    return { tasks: await farm.requeueTasks(id, [...new Set(tasks)]) };
  });

  app.get('/jobs/:id/tasks/:index/log', async (req): Promise<TaskLogReply> => {
    const { id, index } = parseInput(taskParams, req.params, 'params');
    const q = parseInput(logQuery, req.query, 'query');
    return store.readTaskLog(id, index, q);
  });
}
