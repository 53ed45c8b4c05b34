import { knownApps } from '../../core/app-settings.js';
import { invalid } from '../../core/errors.js';
import { isCleanText } from '../../core/text.js';
import { mapPath, mappingOses, rulesFor } from '../../core/path-mapping.js';
import type { Worker } from '../../core/types.js';
import type { Farm } from '../../manager/farm.js';
import type { HandlersOf } from '../../manager/http/serve.js';
import { VERSION } from '../../manager/version.js';
import { MAX_PAGE } from '../../store/contract.js';
import { listOf } from './job-info.js';
import { bodyOf, notSupported, success, yes } from './common.js';
import { deadlineWorkerInfo, deadlineWorkerSettings } from './job-object.js';
import type { DeadlineRoutes } from './routes.js';

/** The Deadline version Drover answers as (the API it follows). */
export const DEADLINE_VERSION = '10.3.0.0';

/** `GET /`: clients check the `Deadline Web Service ` prefix. */
export const BANNER = `Deadline Web Service ${DEADLINE_VERSION} (Drover ${VERSION})`;

/** Deadline's OS names → Drover's. */
const osNames: Record<string, string> = {
  windows: 'win32',
  linux: 'linux',
  mac: 'darwin',
  osx: 'darwin',
  macos: 'darwin',
  ...Object.fromEntries(mappingOses.map((o) => [o, o])),
};

/** Names, `none` first (Ayon sorts it there), then in order. */
function names(list: Iterable<string>): string[] {
  return ['none', ...[...new Set(list)].filter((n) => n !== 'none' && n !== '').sort()];
}

/** `Name=a,b` / `Names=a,b`. */
function wanted(query: { Name?: string | undefined; Names?: string | undefined }) {
  const list = listOf(query.Name ?? query.Names, query.Name !== undefined ? 'Name' : 'Names');
  return list ? new Set(list) : undefined;
}

type Lookups = Omit<
  HandlersOf<DeadlineRoutes>,
  | 'getJobs'
  | 'submitJobs'
  | 'jobCommand'
  | 'deleteJobs'
  | 'getTasks'
  | 'taskCommand'
  | 'getJobReports'
  | 'getTaskReports'
>;

export function lookupHandlers(farm: Farm): Lookups {
  const store = farm.store;
  const no =
    (what: string) =>
    ({ reply }: { reply: Parameters<typeof notSupported>[0] }) =>
      notSupported(reply, what);

  const filterWorkers = (workers: Worker[], query: { Name?: string; Names?: string }) => {
    const only = wanted(query);
    return only ? workers.filter((w) => only.has(w.name)) : workers;
  };

  return {
    root: ({ reply }) => reply.type('text/plain; charset=utf-8').send(BANNER),

    getPools: async () => names((await store.listWorkers()).flatMap((w) => [...w.pools])),
    getGroups: async () => names((await store.listWorkers()).flatMap((w) => [...w.groups])),

    getLimitGroups: async ({ query }) => {
      const only = wanted(query);
      const limits = (await store.listLimits()).filter((l) => !only || only.has(l.name));
      if (yes(query.NamesOnly)) return limits.map((l) => l.name);
      return limits.map((l) => ({
        _id: l.name,
        Name: l.name,
        Props: { Limit: l.max, RelPer: -1, Slaves: [], White: false, SlavesEx: [] },
        Used: l.inUse,
        InUse: l.inUse,
      }));
    },

    limitGroupCommand: async ({ body, reply }) => {
      const b = bodyOf(body);
      const command = typeof b.Command === 'string' ? b.Command.toLowerCase() : '';
      if (command === '') throw invalid('Command', 'is required');
      if (command === 'save' || command === 'reset') {
        return notSupported(reply, `the limit command ${command}`);
      }
      if (command !== 'set') throw invalid('Command', 'must be set, save or reset');
      const name = typeof b.Name === 'string' ? b.Name.trim() : '';
      if (!/^[^\s,]{1,128}$/.test(name) || !isCleanText(name)) {
        throw invalid('Name', 'must be a limit name');
      }
      const max = Number(b.Limit ?? 1);
      if (!Number.isInteger(max) || max < 0 || max > 1_000_000)
        throw invalid('Limit', 'must be a whole number from 0 to 1000000');
      await store.setLimit(name, max);
      farm.signal.wake();
      return success(reply);
    },

    getSlaves: async ({ query }) => {
      const workers = filterWorkers(await store.listWorkers(), query);
      if (yes(query.NamesOnly)) return workers.map((w) => w.name);
      const data = (query.Data ?? 'info').toLowerCase();
      if (data === 'info') return workers.map(deadlineWorkerInfo);
      if (data === 'settings') return workers.map(deadlineWorkerSettings);
      if (data === 'infosettings') {
        return workers.map((w) => ({
          Info: deadlineWorkerInfo(w),
          Settings: deadlineWorkerSettings(w),
        }));
      }
      throw invalid('Data', 'must be info, settings or infosettings');
    },

    getUsers: async ({ query }) => {
      const users = new Set<string>();
      for (let offset = 0; offset < 100_000; offset += MAX_PAGE) {
        const page = await store.listJobs({ all: true, offset, limit: MAX_PAGE });
        for (const j of page) if (j.user) users.add(j.user);
        if (page.length < MAX_PAGE) break;
      }
      const only = wanted(query);
      const list = [...users].filter((u) => !only || only.has(u)).sort();
      if (yes(query.NamesOnly)) return list;
      return list.map((u) => ({ _id: u, Name: u }));
    },

    getMappedPaths: async () =>
      (await store.listPathMappings()).map((r) => ({
        Path: r.prefix,
        Replacement: r.replacement,
        Region: r.region,
        OS: r.os,
        CaseSensitive: r.caseSensitive,
      })),

    // Deadline maps paths as a worker of that OS and region would see them.
    mapPaths: async ({ body }) => {
      const b = bodyOf(body);
      const osName = typeof b.OS === 'string' ? b.OS.trim().toLowerCase() : '';
      const os = Object.hasOwn(osNames, osName) ? osNames[osName] : undefined;
      if (!os) throw invalid('OS', 'must be Windows, Linux or Mac');
      const region = typeof b.Region === 'string' ? b.Region.trim() : '';
      if (!Array.isArray(b.Paths) || b.Paths.length > 10_000)
        throw invalid('Paths', 'must be a list of paths');
      const rules = rulesFor(await store.listPathMappings(), { region, os });
      return (b.Paths as unknown[]).map((p, i) => {
        if (typeof p !== 'string') throw invalid(`Paths.${i}`, 'must be a string');
        return mapPath(p, rules, os);
      });
    },

    maximumPriority: () => 100,

    repository: ({ query, reply }) => {
      if (query.Version === undefined) return notSupported(reply, 'repository folders');
      return reply
        .type('text/plain; charset=utf-8')
        .send(`v${DEADLINE_VERSION} (Drover ${VERSION})`);
    },

    // The built-in plugins, Deadline's CommandScript (run as CommandLine) and those workers
    // online offer (`--apps-dir`).
    getPlugins: async () =>
      [...new Set([...knownApps, 'CommandScript', ...(await farm.pluginOffers.offered())])].sort(),

    postTasks: no('POST /api/tasks'),
    deleteTasks: no('DELETE /api/tasks'),
    postJobReports: no('POST /api/jobreports'),
    putJobReports: no('PUT /api/jobreports'),
    deleteJobReports: no('DELETE /api/jobreports'),
    postTaskReports: no('POST /api/taskreports'),
    putTaskReports: no('PUT /api/taskreports'),
    deleteTaskReports: no('DELETE /api/taskreports'),
    // Drover's pools and groups are what workers serve (`drover worker --pools/--groups`).
    postPools: no('Managing pools (workers declare theirs at start)'),
    putPools: no('Managing pools (workers declare theirs at start)'),
    deletePools: no('Managing pools (workers declare theirs at start)'),
    postGroups: no('Managing groups (workers declare theirs at start)'),
    putGroups: no('Managing groups (workers declare theirs at start)'),
    deleteGroups: no('Managing groups (workers declare theirs at start)'),
    postLimitGroups: no('POST /api/limitgroups'),
    deleteLimitGroups: no('Deleting limits'),
    postSlaves: no('POST /api/slaves'),
    putSlaves: no('Changing worker info or settings (use drover worker options)'),
    deleteSlaves: no('Deleting workers'),
    postUsers: no('Managing users (Drover has tokens: drover token create)'),
    putUsers: no('Managing users (Drover has tokens: drover token create)'),
    deleteUsers: no('Managing users (Drover has tokens: drover token create)'),
  };
}
