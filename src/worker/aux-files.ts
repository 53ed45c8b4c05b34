import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUX_FILE_REF, AUX_FILES_VARIABLE } from '../core/job-spec.js';
import type { TaskAssignment } from '../core/types.js';
import type { AppPlugin } from './apps/types.js';

/**
 * A job's auxiliary files on the worker (Deadline's `AuxFiles`): fetched from the manager
 * into the task's own working folder before the task starts, named as submitted;
 * `<AUXFILE0>`, `<AUXFILE1>`… in the plugin settings become those local paths; the task's
 * processes start in that folder (unless the plugin names another) with
 * `DROVER_AUX_DIRECTORY` set to it. The folder is removed when the task ends.
 */

/** Most bytes of one job's files (the manager's bound; a lying reply cannot fill the disk). */
const MAX_BYTES = 64 * 1024 * 1024;

/** The variable naming the task's working folder that holds the files. */
export const AUX_DIRECTORY_VARIABLE = 'DROVER_AUX_DIRECTORY';

/** The file names the job carries (`DROVER_AUX_FILES`: JSON `["<id>/<name>", …]`), in order. */
export function auxNamesOf(task: Pick<TaskAssignment, 'environment'>): string[] {
  const raw = task.environment[AUX_FILES_VARIABLE];
  if (raw === undefined) return [];
  let list: unknown;
  try {
    list = JSON.parse(raw);
  } catch {
    throw new Error(`${AUX_FILES_VARIABLE} is not a JSON list`);
  }
  if (!Array.isArray(list)) throw new Error(`${AUX_FILES_VARIABLE} is not a JSON list`);
  return list.map((ref) => {
    if (typeof ref !== 'string' || !AUX_FILE_REF.test(ref)) {
      throw new Error(`${AUX_FILES_VARIABLE} holds a bad reference`);
    }
    return ref.slice(ref.indexOf('/') + 1);
  });
}

export interface AuxChunk {
  name: string;
  size: number;
  offset: number;
  /** base64 */
  content: string;
}

/** Asks the manager for a chunk of file `index` from `offset`. */
export type FetchAuxChunk = (index: number, offset: number) => Promise<AuxChunk>;

/** Fetches every file into `dir`; returns their local paths, in order. */
export async function fetchAuxFiles(
  names: readonly string[],
  fetchChunk: FetchAuxChunk,
  dir: string,
): Promise<string[]> {
  const paths: string[] = [];
  let total = 0;
  for (const [index, name] of names.entries()) {
    const path = join(dir, name);
    // 'wx': a name given twice (or a link planted in the folder) is an error, never overwritten.
    const file = await open(path, 'wx', 0o600);
    try {
      let offset = 0;
      for (;;) {
        const chunk = await fetchChunk(index, offset);
        const data = Buffer.from(chunk.content, 'base64');
        if (chunk.offset !== offset || offset + data.length > chunk.size) {
          throw new Error(`the manager sent a bad chunk of auxiliary file ${name}`);
        }
        total += data.length;
        if (total > MAX_BYTES) throw new Error(`auxiliary files over ${MAX_BYTES} bytes`);
        await file.write(data);
        offset += data.length;
        if (offset >= chunk.size) break;
        if (data.length === 0) throw new Error(`auxiliary file ${name} ended early`);
      }
    } finally {
      await file.close();
    }
    paths.push(path);
  }
  return paths;
}

/** `<AUXFILE0>`… in text and list settings → the local paths; an unknown index is an error. */
export function resolveAuxTokens(
  pluginInfo: TaskAssignment['pluginInfo'],
  paths: readonly string[],
): TaskAssignment['pluginInfo'] {
  const one = (s: string) =>
    s.replace(/<AUXFILE(\d+)>/gi, (token, n: string) => {
      const p = paths[Number(n)];
      if (p === undefined) {
        throw new Error(`${token} names no auxiliary file (the job has ${paths.length})`);
      }
      return p;
    });
  const out: TaskAssignment['pluginInfo'] = {};
  for (const [k, v] of Object.entries(pluginInfo)) {
    out[k] = typeof v === 'string' ? one(v) : Array.isArray(v) ? v.map(one) : v;
  }
  return out;
}

/** The plugin, its processes started in `dir` (unless it names a folder) with the variable set. */
function inFolder(app: AppPlugin, dir: string): AppPlugin {
  return {
    name: app.name,
    createParser: (task) => app.createParser(task),
    processes: (task) =>
      app.processes(task).map((spec) => ({
        ...spec,
        cwd: spec.cwd ?? dir,
        env: { ...spec.env, [AUX_DIRECTORY_VARIABLE]: dir },
      })),
  };
}

export interface PreparedTask {
  task: TaskAssignment;
  findApp: (name: string) => AppPlugin;
  /** Removes the task's folder (after the task ended). */
  cleanup: () => Promise<void>;
}

/**
 * Readies a task whose job has auxiliary files. A failure does not throw: the returned
 * `findApp` throws it, so the runner logs it and fails the task like any plugin error.
 */
export async function prepareAuxFiles(
  task: TaskAssignment,
  findApp: (name: string) => AppPlugin,
  fetchChunk: FetchAuxChunk,
): Promise<PreparedTask> {
  let dir: string | undefined;
  const cleanup = async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  };
  try {
    const names = auxNamesOf(task);
    if (names.length === 0) return { task, findApp, cleanup };
    const safeId = `${task.jobId}_${task.taskIndex}`.replace(/[^A-Za-z0-9_-]/g, '_');
    dir = await mkdtemp(join(tmpdir(), `drover-task-${safeId}-`));
    const paths = await fetchAuxFiles(names, fetchChunk, dir);
    const folder = dir;
    return {
      task: { ...task, pluginInfo: resolveAuxTokens(task.pluginInfo, paths) },
      findApp: (name) => inFolder(findApp(name), folder),
      cleanup,
    };
  } catch (error) {
    const message = `cannot fetch the job's auxiliary files: ${error instanceof Error ? error.message : String(error)}`;
    return {
      task,
      findApp: () => {
        throw new Error(message);
      },
      cleanup,
    };
  }
}
