import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import type { Principal } from '../core/auth.js';
import { DroverError, invalid } from '../core/errors.js';
import { AUX_FILE_REF, AUX_FILES_VARIABLE } from '../core/job-spec.js';

/**
 * Auxiliary files (Deadline's `AuxFiles`): files a job needs besides its settings (a scene,
 * a script), kept by the manager in `<dataDir>/aux-files/<id>/` and fetched by workers into
 * the task's working folder before the task starts.
 *
 * They arrive before the job exists — uploaded (`POST /aux-files`, in chunks: `deadlinecommand
 * JOBINFO PLUGININFO AUX…`) or copied from a path on the manager's host (the Web Service's
 * `AuxFiles`, as Deadline's) — and the submission names them by the references those answer
 * (`<id>/<name>`). So the job carries them from its first commit (in its environment as
 * `DROVER_AUX_FILES`): no worker can claim a task of it before its files are in place.
 *
 * Bounds: 64 files and 64 MiB per job; only regular files are read; a user names only the
 * files it uploaded itself. With several managers, `<dataDir>/aux-files` must be one shared
 * folder (a worker may ask any manager).
 */

/** Most bytes of all auxiliary files of one job. */
export const MAX_AUX_BYTES_PER_JOB = 64 * 1024 * 1024;
/** Most auxiliary files of one job. */
export const MAX_AUX_FILES_PER_JOB = 64;
/** Most bytes one upload or fetch request carries (base64 in JSON: within the body limit). */
export const AUX_CHUNK_BYTES = 1024 * 1024;

export interface AuxFileInfo {
  /** `<id>/<name>`: what a submission's `auxFiles` names. */
  ref: string;
  name: string;
  size: number;
}

interface Meta {
  owner: string;
  name: string;
  createdAt: number;
  /** The jobs that name the file, once one does (see `claim`). */
  jobs?: string[];
}

/** How long an upload no job names is kept (a submission that never came). */
export const UNCLAIMED_AUX_TTL_MS = 24 * 60 * 60_000;
/** Most jobs one upload is claimed by (a user resubmitting it, idempotent retries). */
const MAX_CLAIMS = 100;
/** Most folders one clean-up round looks at. */
const CLEAN_BATCH = 1000;

/** A file name safe on every worker: no separators, `:`, `=`, control characters; not `.`/`..`. */
export function safeAuxName(name: string): string {
  const cleaned = basename(name.replace(/\\/g, '/'))
    // eslint-disable-next-line no-control-regex -- control characters are what it replaces
    .replace(/[/\\:=\0-\x1f]/g, '_')
    .slice(0, 255);
  return cleaned === '' || cleaned === '.' || cleaned === '..' ? 'auxfile' : cleaned;
}

/** The references a job's environment carries (`DROVER_AUX_FILES`), or none. */
export function auxRefsOf(environment: Readonly<Record<string, string>>): string[] {
  const raw = environment[AUX_FILES_VARIABLE];
  if (raw === undefined) return [];
  try {
    const list: unknown = JSON.parse(raw);
    return Array.isArray(list)
      ? list.filter((r): r is string => typeof r === 'string' && AUX_FILE_REF.test(r))
      : [];
  } catch {
    return [];
  }
}

/** The name part of a reference (`<id>/<name>`). */
export function auxNameOf(ref: string): string {
  return ref.slice(ref.indexOf('/') + 1);
}

function ownerOf(principal: Principal | undefined): string {
  return principal?.name ?? '';
}

function mayUse(meta: Meta, principal: Principal | undefined): boolean {
  // Without a principal (`--no-auth`, in-process callers) and for admins: any file.
  return !principal || principal.role === 'admin' || meta.owner === principal.name;
}

export class AuxFileStore {
  constructor(
    /** `<dataDir>/aux-files`. */
    readonly root: string,
    /** Folders an `AuxFiles` path may never be read from (the data directory, `/proc`…). */
    private readonly refused: readonly string[] = [],
  ) {}

  #dir(id: string): string {
    return join(this.root, id);
  }

  #parse(ref: string, field: string): { id: string; name: string } {
    if (!AUX_FILE_REF.test(ref)) throw invalid(field, 'must be a reference an upload answered');
    const at = ref.indexOf('/');
    return { id: ref.slice(0, at), name: ref.slice(at + 1) };
  }

  async #meta(id: string): Promise<Meta | undefined> {
    try {
      return JSON.parse(await readFile(join(this.#dir(id), 'meta.json'), 'utf8')) as Meta;
    } catch {
      return undefined;
    }
  }

  async #size(id: string): Promise<number> {
    try {
      return (await lstat(join(this.#dir(id), 'data'))).size;
    } catch {
      return -1;
    }
  }

  async #create(owner: string, name: string, data: Buffer): Promise<AuxFileInfo> {
    const id = randomBytes(16).toString('hex');
    const dir = this.#dir(id);
    await mkdir(dir, { recursive: true });
    const safe = safeAuxName(name);
    await writeFile(join(dir, 'data'), data, { flag: 'wx', mode: 0o600 });
    const meta: Meta = { owner, name: safe, createdAt: Date.now() };
    await writeFile(join(dir, 'meta.json'), JSON.stringify(meta), { mode: 0o600 });
    return { ref: `${id}/${safe}`, name: safe, size: data.length };
  }

  /**
   * An upload's chunk: without `ref`, a new file; with it, the bytes appended at `offset`
   * (which must be the file's size: a chunk sent twice is refused, not doubled).
   */
  async upload(
    principal: Principal | undefined,
    input: { name: string; data: Buffer; ref?: string; offset?: number },
  ): Promise<AuxFileInfo> {
    if (input.data.length > AUX_CHUNK_BYTES) {
      throw new DroverError('too_large', `content: at most ${AUX_CHUNK_BYTES} bytes a request`);
    }
    if (input.ref === undefined) return this.#create(ownerOf(principal), input.name, input.data);
    const { id, name } = this.#parse(input.ref, 'ref');
    const meta = await this.#meta(id);
    if (!meta || meta.name !== name || !mayUse(meta, principal)) {
      throw invalid('ref', 'no upload of yours has this reference');
    }
    const size = await this.#size(id);
    if (input.offset !== size) {
      throw invalid('offset', `must be the upload's size so far (${size})`);
    }
    if (size + input.data.length > MAX_AUX_BYTES_PER_JOB) {
      throw new DroverError(
        'too_large',
        `content: an auxiliary file may hold at most ${MAX_AUX_BYTES_PER_JOB} bytes`,
      );
    }
    const file = await open(join(this.#dir(id), 'data'), 'a');
    try {
      await file.write(input.data);
    } finally {
      await file.close();
    }
    return { ref: input.ref, name, size: size + input.data.length };
  }

  /**
   * Copies files named by paths on the manager's host (the Web Service's `AuxFiles`): each
   * must be a regular file (a symbolic link is followed to one), outside the refused folders,
   * readable by the manager; all together within the per-job bound. Nothing is kept when one
   * fails. Errors name `field` and the path's index.
   */
  async copyPaths(
    principal: Principal | undefined,
    paths: readonly unknown[],
    field: string,
    /** Folders a non-admin token's paths must be in (`--deadline-aux-root`); admins: anywhere. */
    userRoots: readonly string[] = [],
  ): Promise<AuxFileInfo[]> {
    if (paths.length > MAX_AUX_FILES_PER_JOB) {
      throw invalid(field, `at most ${MAX_AUX_FILES_PER_JOB} files per job`);
    }
    const sources: { path: string; size: number; name: string }[] = [];
    let total = 0;
    for (const [i, p] of paths.entries()) {
      const where = `${field}.${i}`;
      if (typeof p !== 'string' || p.trim() === '' || p.includes('\0')) {
        throw invalid(where, 'must be the path of a file on the manager host');
      }
      const path = resolve(p.trim());
      if (path !== p.trim()) throw invalid(where, 'must be an absolute path without . or ..');
      let real: string;
      try {
        real = await realpath(path);
      } catch (err) {
        throw invalid(where, `cannot read ${path} on the manager host (${codeOf(err)})`);
      }
      if (this.refused.some((r) => inside(real, r))) {
        throw invalid(where, `${path} is in a folder the manager never reads auxiliary files from`);
      }
      // A user token must not make the manager read whatever its account can (its own
      // secrets, other users' files): only inside the folders the admin named.
      if (principal && principal.role !== 'admin' && !userRoots.some((r) => inside(real, r))) {
        throw invalid(
          where,
          userRoots.length === 0
            ? 'this manager reads no AuxFiles paths for user tokens (start it with --deadline-aux-root DIR, or upload with deadlinecommand)'
            : `${path} is outside the folders this manager reads AuxFiles from (--deadline-aux-root)`,
        );
      }
      const st = await lstat(real);
      if (!st.isFile()) throw invalid(where, `${path} is not a regular file`);
      total += st.size;
      if (total > MAX_AUX_BYTES_PER_JOB) {
        throw invalid(field, `at most ${MAX_AUX_BYTES_PER_JOB} bytes of auxiliary files per job`);
      }
      sources.push({ path: real, size: st.size, name: basename(path) });
    }
    const made: AuxFileInfo[] = [];
    try {
      for (const [i, s] of sources.entries()) {
        let data: Buffer;
        try {
          // O_NOFOLLOW: the file checked above, not a link swapped in since.
          const file = await open(s.path, constants.O_RDONLY | constants.O_NOFOLLOW);
          try {
            if (!(await file.stat()).isFile()) throw new Error('not a regular file');
            data = Buffer.alloc(0);
            const chunks: Buffer[] = [];
            let read = 0;
            for (;;) {
              const buf = Buffer.alloc(Math.min(AUX_CHUNK_BYTES, s.size - read + 1));
              const { bytesRead } = await file.read(buf, 0, buf.length, null);
              if (bytesRead === 0) break;
              read += bytesRead;
              if (read > s.size) throw new Error('it grew while being copied');
              chunks.push(buf.subarray(0, bytesRead));
            }
            data = Buffer.concat(chunks);
          } finally {
            await file.close();
          }
        } catch (err) {
          throw invalid(`${field}.${i}`, `cannot read ${s.path} (${codeOf(err)})`);
        }
        made.push(await this.#create(ownerOf(principal), s.name, data));
      }
    } catch (err) {
      await this.remove(made.map((m) => m.ref));
      throw err;
    }
    return made;
  }

  /**
   * Checks a submission's references: each an upload the principal may use (its own; an
   * admin's: any), no name twice, all within the per-job bounds. Errors name `field`.
   */
  async check(
    principal: Principal | undefined,
    refs: readonly string[],
    field: string,
  ): Promise<void> {
    if (refs.length > MAX_AUX_FILES_PER_JOB) {
      throw invalid(field, `at most ${MAX_AUX_FILES_PER_JOB} files per job`);
    }
    const names = new Set<string>();
    let total = 0;
    for (const [i, ref] of refs.entries()) {
      const where = `${field}.${i}`;
      const { id, name } = this.#parse(ref, where);
      const meta = await this.#meta(id);
      if (!meta || meta.name !== name || !mayUse(meta, principal)) {
        throw invalid(where, 'no upload of yours has this reference');
      }
      if (names.has(name)) throw invalid(where, `two auxiliary files are named ${name}`);
      if ((meta.jobs?.length ?? 0) >= MAX_CLAIMS) {
        throw invalid(where, `is named by ${MAX_CLAIMS} jobs already; upload the file again`);
      }
      names.add(name);
      total += Math.max(0, await this.#size(id));
      if (total > MAX_AUX_BYTES_PER_JOB) {
        throw invalid(field, `at most ${MAX_AUX_BYTES_PER_JOB} bytes of auxiliary files per job`);
      }
    }
  }

  /** Up to `AUX_CHUNK_BYTES` of a file from `offset`, and its size. */
  async read(ref: string, offset: number): Promise<{ size: number; data: Buffer }> {
    const { id } = this.#parse(ref, 'ref');
    const path = join(this.#dir(id), 'data');
    let file;
    try {
      file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      throw new DroverError('not_found', `auxiliary file ${ref} not found on this manager`);
    }
    try {
      const size = (await file.stat()).size;
      const length = Math.max(0, Math.min(AUX_CHUNK_BYTES, size - offset));
      const buf = Buffer.alloc(length);
      const { bytesRead } = length > 0 ? await file.read(buf, 0, length, offset) : { bytesRead: 0 };
      return { size, data: buf.subarray(0, bytesRead) };
    } finally {
      await file.close();
    }
  }

  /** Removes files (a submission that failed after copying them). */
  async remove(refs: readonly string[]): Promise<void> {
    for (const ref of refs) {
      if (!AUX_FILE_REF.test(ref)) continue;
      await rm(this.#dir(ref.slice(0, ref.indexOf('/'))), { recursive: true, force: true });
    }
  }

  /** Records the job that names the files (so clean-up keeps them while the job may run). */
  async claim(refs: readonly string[], jobId: string): Promise<void> {
    for (const ref of refs) {
      if (!AUX_FILE_REF.test(ref)) continue;
      const id = ref.slice(0, ref.indexOf('/'));
      const meta = await this.#meta(id);
      if (!meta) continue;
      const jobs = [...new Set([...(meta.jobs ?? []), jobId])].slice(-MAX_CLAIMS);
      await writeFile(join(this.#dir(id), 'meta.json'), JSON.stringify({ ...meta, jobs }), {
        mode: 0o600,
      });
    }
  }

  /**
   * One round of clean-up (house cleaning; at most 1,000 folders a round, so a large folder
   * never stalls the manager): removes the files of jobs that can never run again (deleted,
   * archived, gone from the store) and uploads no job claimed within `unclaimedTtlMs`.
   * Returns how many uploads it removed.
   */
  async clean(
    jobState: (id: string) => Promise<string | undefined>,
    unclaimedTtlMs = UNCLAIMED_AUX_TTL_MS,
    now = Date.now(),
  ): Promise<number> {
    let ids: string[];
    try {
      ids = (await readdir(this.root)).filter((id) => /^[0-9a-f]{32}$/.test(id));
    } catch {
      return 0;
    }
    // Where the last round stopped, so every folder gets its turn.
    const start = ids.length > CLEAN_BATCH ? this.#cleanFrom % ids.length : 0;
    const batch = [...ids.slice(start), ...ids.slice(0, start)].slice(0, CLEAN_BATCH);
    this.#cleanFrom = start + batch.length;
    let removed = 0;
    for (const id of batch) {
      const meta = await this.#meta(id);
      let gone: boolean;
      if (meta?.jobs?.length) {
        gone = true;
        for (const job of meta.jobs) {
          const state = await jobState(job);
          if (state !== undefined && state !== 'deleted' && state !== 'archived') gone = false;
        }
      } else {
        // No meta (a crash mid-upload): its age counts from the folder's own time.
        const created = meta?.createdAt ?? (await lstat(this.#dir(id))).mtimeMs;
        gone = now - created >= unclaimedTtlMs;
      }
      if (!gone) continue;
      await rm(this.#dir(id), { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  #cleanFrom = 0;
}

function inside(path: string, folder: string): boolean {
  const f = resolve(folder);
  return path === f || path.startsWith(f.endsWith(sep) ? f : f + sep);
}

function codeOf(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ELOOP') return 'a symbolic link';
  return code ?? (err instanceof Error ? err.message : String(err));
}

/** What the routes need of the farm (kept narrow: no import of the Farm here). */
export interface AuxFileFarm {
  auxFiles: AuxFileStore | undefined;
  store: {
    fetchJob(id: string): Promise<{ environment: Record<string, string> } | undefined>;
    fetchWorker(name: string): Promise<{ runningTasks: string[] } | undefined>;
  };
}

function storeOf(farm: AuxFileFarm): AuxFileStore {
  if (!farm.auxFiles) {
    throw new DroverError(
      'unavailable',
      'this manager keeps no auxiliary files (no data directory)',
    );
  }
  return farm.auxFiles;
}

/** `POST /aux-files`: one chunk of an upload (base64). */
export async function uploadAuxFile(
  farm: AuxFileFarm,
  principal: Principal | undefined,
  body: { name: string; content: string; ref?: string | undefined; offset?: number | undefined },
): Promise<{ auxFile: AuxFileInfo }> {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body.content)) throw invalid('content', 'must be base64');
  const data = Buffer.from(body.content, 'base64');
  if (body.ref !== undefined && body.offset === undefined) {
    throw invalid('offset', 'is required with ref');
  }
  const auxFile = await storeOf(farm).upload(principal, {
    name: body.name,
    data,
    ...(body.ref !== undefined ? { ref: body.ref, offset: body.offset } : {}),
  });
  return { auxFile };
}

/**
 * `GET /workers/:name/aux-files/:job/:index`: a chunk of the job's file, for a worker that
 * holds a task of the job now (so a worker token reads only the files of work it was given).
 */
export async function fetchAuxFileChunk(
  farm: AuxFileFarm,
  worker: string,
  jobId: string,
  index: number,
  offset: number,
): Promise<{ name: string; size: number; offset: number; content: string }> {
  const w = await farm.store.fetchWorker(worker);
  if (!w) throw new DroverError('not_found', `worker ${worker} not found`);
  // Not 403: the token may act as this worker; the worker has nothing to fetch for this job.
  if (!w.runningTasks.some((t) => t.startsWith(`${jobId}:`))) {
    throw new DroverError(
      'not_found',
      `no auxiliary files for worker ${worker}: it holds no task of job ${jobId}`,
    );
  }
  const files = storeOf(farm);
  const job = await farm.store.fetchJob(jobId);
  const ref = job ? auxRefsOf(job.environment)[index] : undefined;
  if (ref === undefined) {
    throw new DroverError('not_found', `job ${jobId} has no auxiliary file ${index}`);
  }
  const { size, data } = await files.read(ref, offset);
  return { name: auxNameOf(ref), size, offset, content: data.toString('base64') };
}
