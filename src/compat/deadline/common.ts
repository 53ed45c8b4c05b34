import type { FastifyReply } from 'fastify';
import type { Principal } from '../../core/auth.js';
import { DroverError, invalid, notFound } from '../../core/errors.js';
import type { Job, Task } from '../../core/types.js';
import type { Store } from '../../store/contract.js';
import { MAX_PAGE } from '../../store/contract.js';
import { isCleanText } from '../../core/text.js';
import { listOf } from './job-info.js';

/** What the Web Service's handlers share: Deadline's reply styles, body reading, job access. */

/** Mutating calls answer the text `Success`, as Deadline's do. */
export function success(reply: FastifyReply): FastifyReply {
  return reply.type('text/plain; charset=utf-8').send('Success');
}

/** 501 with a text naming what is not supported. */
export function notSupported(reply: FastifyReply, what: string): FastifyReply {
  return reply
    .status(501)
    .type('text/plain; charset=utf-8')
    .send(`${what} is not supported by Drover's Deadline Web Service`);
}

export type Body = Record<string, unknown>;

export function bodyOf(value: unknown): Body {
  if (value === undefined || value === null) throw invalid('body', 'missing body');
  if (typeof value !== 'object' || Array.isArray(value))
    throw invalid('body', 'must be a JSON object');
  return value as Body;
}

export function yes(value: unknown): boolean {
  return value === true || (typeof value === 'string' && /^true$/i.test(value.trim()));
}

export function requiredString(body: Body, key: string): string {
  const v = body[key];
  if (typeof v === 'number') return String(v);
  if (typeof v !== 'string' || v.trim() === '') throw invalid(key, 'is required');
  return v.trim();
}

/** Job ids of a query or body value (`a,b` or a list). */
export function idsOf(value: unknown, key: string): string[] {
  const ids = listOf(value, key);
  if (!ids) throw invalid(key, 'is required');
  if (ids.length > 1000) throw invalid(key, 'at most 1000 ids');
  for (const id of ids) checkId(id, key);
  return ids;
}

/** A job id as a store can look it up (PostgreSQL refuses NUL in a query with a 500). */
function checkId(id: string, key: string): void {
  if (id.length > 64 || !isCleanText(id)) throw invalid(key, 'must be a job id');
}

export async function allPages<T>(
  read: (offset: number) => Promise<T[]>,
  max: number,
): Promise<T[]> {
  const all: T[] = [];
  for (let offset = 0; all.length < max; offset += MAX_PAGE) {
    const page = await read(offset);
    all.push(...page);
    if (page.length < MAX_PAGE) break;
  }
  return all.slice(0, max);
}

/** Reading jobs and acting on them as a principal may. */
export function jobAccess(store: Store) {
  return {
    /** The job, when the principal may act on it: a user token only on its own jobs. */
    ownJob: async (id: string, principal: Principal | undefined): Promise<Job> => {
      checkId(id, 'JobID');
      const job = await store.fetchJob(id);
      if (!job || job.state === 'deleted') throw notFound(`job ${id}`);
      if (principal && principal.role !== 'admin' && job.user !== principal.name) {
        throw new DroverError(
          'forbidden',
          `job ${id} belongs to ${job.user || 'nobody'}; ${principal.name} may change only its own jobs`,
        );
      }
      return job;
    },

    /** The job, for reading (deleted jobs too). */
    readJob: async (id: string): Promise<Job> => {
      checkId(id, 'JobID');
      const job = await store.fetchJob(id);
      if (!job) throw notFound(`job ${id}`);
      return job;
    },

    /** Every task of a job, page by page. */
    tasksOf: (jobId: string): Promise<Task[]> =>
      allPages((offset) => store.listTasks(jobId, { offset, limit: MAX_PAGE }), 1_000_000),
  };
}
