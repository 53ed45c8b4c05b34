import { z } from 'zod';
import { route, type Access, type HttpMethod, type RouteDef } from '../../api/contract.js';
import { text } from '../../core/text.js';

/**
 * Deadline 10's Web Service API as Drover serves it (`--deadline-port`, default in Deadline
 * 8082): its own route table, served by the same `serveRoutes` as the native API, so access
 * is decided from the matched route and anything undeclared is refused.
 *
 * Access mirrors the native API: reading is `read`; submitting and acting on jobs is `user`
 * (a user token acts only on its own jobs, checked in the handlers because Deadline names the
 * job in the body or query, not the path); farm settings (limits) are `admin`. Methods
 * Deadline itself does not support on a resource, and commands Drover cannot honour, answer
 * 501 with a text saying so; those routes are public, since they answer nothing else.
 */

/** Query values are text (Deadline sends lists comma-joined); unknown parameters are ignored. */
const q = text().max(100_000).optional();
const query = z.looseObject({
  JobID: q,
  JobIDs: q,
  TaskID: q,
  States: q,
  IdOnly: q,
  Details: q,
  Statistics: q,
  Deleted: q,
  Purge: q,
  Data: q,
  NamesOnly: q,
  Name: q,
  Names: q,
  Version: q,
  Directory: q,
});
/** Bodies are read by the handlers, which name the key at fault. */
const body = z.unknown();
const reply = z.unknown();

function api<N extends string>(
  name: N,
  method: HttpMethod,
  path: string,
  access: Access,
  summary: string,
  withBody = method !== 'GET' && method !== 'DELETE',
) {
  return route({
    name,
    method,
    path,
    root: true,
    summary,
    access,
    query,
    ...(withBody ? { body } : {}),
    reply,
  });
}

/** A method Deadline does not support on a resource (or Drover does not implement): 501. */
function unsupported<N extends string>(name: N, method: HttpMethod, path: string) {
  return route({
    name,
    method,
    path,
    root: true,
    summary: `501: ${method} ${path} is not supported`,
    access: 'public',
    reply,
    replyKind: 'text',
    status: 501,
  });
}

export const deadlineRoutes = {
  root: route({
    name: 'root',
    method: 'GET',
    path: '/',
    root: true,
    summary: 'Deadline Web Service banner (clients check its prefix)',
    access: 'public',
    reply,
    replyKind: 'text',
  }),

  getJobs: api('getJobs', 'GET', '/api/jobs', 'read', 'jobs: all, by id, by state, ids only'),
  submitJobs: api('submitJobs', 'POST', '/api/jobs', 'user', 'submit one job or several'),
  jobCommand: api('jobCommand', 'PUT', '/api/jobs', 'user', 'a job command'),
  deleteJobs: api('deleteJobs', 'DELETE', '/api/jobs', 'user', 'delete jobs'),

  getTasks: api('getTasks', 'GET', '/api/tasks', 'read', "a job's tasks"),
  taskCommand: api('taskCommand', 'PUT', '/api/tasks', 'user', 'a command on tasks'),
  postTasks: unsupported('postTasks', 'POST', '/api/tasks'),
  deleteTasks: unsupported('deleteTasks', 'DELETE', '/api/tasks'),

  getJobReports: api('getJobReports', 'GET', '/api/jobreports', 'read', "a job's reports"),
  postJobReports: unsupported('postJobReports', 'POST', '/api/jobreports'),
  putJobReports: unsupported('putJobReports', 'PUT', '/api/jobreports'),
  deleteJobReports: unsupported('deleteJobReports', 'DELETE', '/api/jobreports'),
  getTaskReports: api('getTaskReports', 'GET', '/api/taskreports', 'read', "a task's reports"),
  postTaskReports: unsupported('postTaskReports', 'POST', '/api/taskreports'),
  putTaskReports: unsupported('putTaskReports', 'PUT', '/api/taskreports'),
  deleteTaskReports: unsupported('deleteTaskReports', 'DELETE', '/api/taskreports'),

  getPools: api('getPools', 'GET', '/api/pools', 'read', "pools (the workers' pools)"),
  postPools: unsupported('postPools', 'POST', '/api/pools'),
  putPools: unsupported('putPools', 'PUT', '/api/pools'),
  deletePools: unsupported('deletePools', 'DELETE', '/api/pools'),
  getGroups: api('getGroups', 'GET', '/api/groups', 'read', "groups (the workers' groups)"),
  postGroups: unsupported('postGroups', 'POST', '/api/groups'),
  putGroups: unsupported('putGroups', 'PUT', '/api/groups'),
  deleteGroups: unsupported('deleteGroups', 'DELETE', '/api/groups'),

  getLimitGroups: api('getLimitGroups', 'GET', '/api/limitgroups', 'read', 'limits'),
  limitGroupCommand: api('limitGroupCommand', 'PUT', '/api/limitgroups', 'admin', 'set a limit'),
  postLimitGroups: unsupported('postLimitGroups', 'POST', '/api/limitgroups'),
  deleteLimitGroups: unsupported('deleteLimitGroups', 'DELETE', '/api/limitgroups'),

  getSlaves: api('getSlaves', 'GET', '/api/slaves', 'read', 'workers: names, info, settings'),
  postSlaves: unsupported('postSlaves', 'POST', '/api/slaves'),
  putSlaves: unsupported('putSlaves', 'PUT', '/api/slaves'),
  deleteSlaves: unsupported('deleteSlaves', 'DELETE', '/api/slaves'),

  getUsers: api('getUsers', 'GET', '/api/users', 'read', "users (the jobs' users)"),
  postUsers: unsupported('postUsers', 'POST', '/api/users'),
  putUsers: unsupported('putUsers', 'PUT', '/api/users'),
  deleteUsers: unsupported('deleteUsers', 'DELETE', '/api/users'),

  getMappedPaths: api('getMappedPaths', 'GET', '/api/mappedpaths', 'read', 'path mapping rules'),
  mapPaths: api('mapPaths', 'POST', '/api/mappedpaths', 'read', 'map paths for an OS and region'),

  maximumPriority: api('maximumPriority', 'GET', '/api/maximumpriority', 'read', '100'),
  repository: api('repository', 'GET', '/api/repository', 'read', 'the version'),
  getPlugins: api('getPlugins', 'GET', '/api/plugins', 'read', 'application plugin names'),
} as const satisfies Record<string, RouteDef>;

export type DeadlineRoutes = typeof deadlineRoutes;
