import { createHash } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import type { TaskReportInput } from '../core/worker-protocol.js';
import type { GroupRecorder, TaskGroupRecord } from './isolation/index.js';
import { dropMarker, type LogBatch } from './log-buffer.js';
import type { LogSpool } from './log-shipper.js';

/**
 * The worker's on-disk spool: task logs the manager could not take yet, and every task
 * result until the manager has acknowledged it. It lets a worker cut off from its manager
 * keep rendering without losing output, and a worker process that restarts deliver what
 * its predecessor finished.
 *
 * Layout: one folder per lease (`<dir>/<lease>/`) holding `task.json` (which task it is),
 * log batches `log-<seq>-<batch>.json` (at most one log request each, so a batch is sent as
 * it is, with its number: see `LogBatch`) and `result.json` (the report). Every file is written to a temporary name and renamed, so
 * a crash never leaves a half-written one. `seq` is global across leases: it orders batches
 * for delivery and tells which output is oldest.
 *
 * Task groups: `task-group-<id>.json` beside the lease folders records each running task
 * process group (its cgroup, or its process group and marker, see `isolation/`) from before
 * it starts until nothing of it is left. What a killed worker leaves there is killed by the
 * next run before it registers.
 *
 * Bounds: log batches take at most `maxBytes` together; past that the oldest batch (of any
 * lease) is dropped and a `drop-<seq>.json` marker in its place turns into one
 * `[… N bytes dropped …]` line in the task log. Results are never dropped (they are small).
 *
 * Delivery is at least once for a log batch: a worker killed between a batch reaching the
 * manager and the batch's file being removed sends it again after the restart. The batch's
 * number makes the manager take it once.
 */

export interface SpoolOptions {
  dir: string;
  /** Most bytes of log batches kept on disk (default 256 MiB, at least 2 MiB). */
  maxBytes?: number;
}

export const DEFAULT_SPOOL_BYTES = 256 * 1024 * 1024;
const MIN_SPOOL_BYTES = 2 * 1024 * 1024;

/** Which task a spool folder belongs to (for the worker log and the delivery order). */
export interface SpooledTask {
  lease: string;
  jobId: string;
  taskIndex: number;
  attempt: number;
}

/** A lease's folder as found when the spool was opened (left by an earlier run). */
export interface SpoolEntry {
  task: SpooledTask;
  /** The report, when the task had ended; otherwise it was still running. */
  result: TaskReportInput | undefined;
}

interface Batch {
  seq: number;
  /** The batch's number for the manager (`LogBatch.batch`); absent in an old spool. */
  batch?: number;
  bytes: number;
  /** A marker: output dropped here (bytes). */
  dropped?: number;
}

interface LeaseState {
  task: SpooledTask;
  folder: string;
  /** The folder and task.json exist on disk. */
  created: boolean;
  /** Oldest first. */
  batches: Batch[];
  /** For ordering entries found at open. */
  firstSeq: number;
}

/** Spool folders held by agents of this process (a lock file alone cannot tell them apart). */
const heldHere = new Set<string>();

export class SpoolInUseError extends Error {}

export class Spool {
  readonly dir: string;
  readonly maxBytes: number;
  readonly #leases = new Map<string, LeaseState>();
  readonly #found: SpoolEntry[] = [];
  readonly #groupsFound: TaskGroupRecord[] = [];
  #seq = 0;
  #bytes = 0;
  #droppedBytes = 0;
  #closed = false;

  private constructor(dir: string, maxBytes: number) {
    this.dir = dir;
    this.maxBytes = Math.max(MIN_SPOOL_BYTES, maxBytes);
  }

  /**
   * Opens (creating) the spool folder and reads what an earlier run left. Throws
   * SpoolInUseError when another live worker holds the folder: two workers sharing one
   * spool would deliver each other's reports.
   */
  static open(options: SpoolOptions): Spool {
    const dir = resolve(options.dir);
    mkdirSync(dir, { recursive: true });
    lock(dir);
    const spool = new Spool(dir, options.maxBytes ?? DEFAULT_SPOOL_BYTES);
    try {
      spool.#scan();
    } catch (error) {
      unlock(dir);
      throw error;
    }
    return spool;
  }

  /** Bytes of log batches on disk. */
  get logBytes(): number {
    return this.#bytes;
  }

  /** Log bytes dropped to stay within `maxBytes` since the spool was opened. */
  get droppedBytes(): number {
    return this.#droppedBytes;
  }

  /** What an earlier run left, oldest first (each is delivered, then `remove`d). */
  found(): SpoolEntry[] {
    return [...this.#found];
  }

  /** The task groups an earlier run left recorded (its processes may still run). */
  taskGroupsFound(): TaskGroupRecord[] {
    return [...this.#groupsFound];
  }

  /** Where the isolation records the task groups it starts (see `isolation/`). */
  get groupRecorder(): GroupRecorder {
    return {
      save: (record) => writeAtomic(join(this.dir, groupFile(record.id)), JSON.stringify(record)),
      remove: (id) => unlinkQuiet(join(this.dir, groupFile(id))),
    };
  }

  /** Starts tracking a task (nothing is written until there is something to keep). */
  begin(task: SpooledTask): void {
    if (this.#leases.has(task.lease)) return;
    this.#leases.set(task.lease, {
      task,
      folder: join(this.dir, folderName(task.lease)),
      created: false,
      batches: [],
      firstSeq: this.#seq,
    });
  }

  /** The log side of one lease, for its LogShipper. */
  logSpool(lease: string): LogSpool {
    return {
      pending: () => this.hasLog(lease),
      write: (chunks) => this.appendLog(lease, chunks),
      peek: () => this.peekLog(lease),
      shift: () => this.shiftLog(lease),
    };
  }

  hasLog(lease: string): boolean {
    return (this.#leases.get(lease)?.batches.length ?? 0) > 0;
  }

  /** Writes one batch (at most one log request's worth of chunks) after the lease's others. */
  appendLog(lease: string, log: LogBatch): void {
    if (log.chunks.length === 0) return;
    const state = this.#ensure(lease);
    const seq = ++this.#seq;
    const text = JSON.stringify({ chunks: log.chunks });
    writeAtomic(join(state.folder, batchFile(seq, false, log.batch)), text);
    const bytes = Buffer.byteLength(text);
    state.batches.push({ seq, bytes, ...(log.batch === undefined ? {} : { batch: log.batch }) });
    this.#bytes += bytes;
    this.#enforceBound();
  }

  /** The lease's oldest batch, to send as it is. */
  peekLog(lease: string): LogBatch | undefined {
    const state = this.#leases.get(lease);
    const b = state?.batches[0];
    if (!state || !b) return undefined;
    const number = b.batch === undefined ? {} : { batch: b.batch };
    if (b.dropped !== undefined) {
      return { ...number, chunks: [{ stream: 'system', text: dropMarker(b.dropped) }] };
    }
    // Unreadable: sent as nothing, then removed.
    const parsed = readJson<{ chunks?: unknown }>(
      join(state.folder, batchFile(b.seq, false, b.batch)),
    );
    return {
      ...number,
      chunks: Array.isArray(parsed?.chunks) ? (parsed.chunks as LogBatch['chunks']) : [],
    };
  }

  /** Removes the lease's oldest batch (delivered, or refused as it is). */
  shiftLog(lease: string): void {
    const state = this.#leases.get(lease);
    const batch = state?.batches.shift();
    if (!state || !batch) return;
    if (batch.dropped === undefined) this.#bytes -= batch.bytes;
    unlinkQuiet(join(state.folder, batchFile(batch.seq, batch.dropped !== undefined, batch.batch)));
  }

  /** Keeps a task's report until the manager has acknowledged it (written before sending). */
  saveResult(lease: string, report: TaskReportInput): void {
    const state = this.#ensure(lease);
    writeAtomic(join(state.folder, 'result.json'), JSON.stringify(report), true);
  }

  /** Forgets a lease: delivered, refused, or revoked. */
  remove(lease: string): void {
    const state = this.#leases.get(lease);
    if (!state) return;
    this.#leases.delete(lease);
    for (const b of state.batches) if (b.dropped === undefined) this.#bytes -= b.bytes;
    if (state.created) rmSync(state.folder, { recursive: true, force: true });
  }

  /** Releases the folder; removes it when nothing is left in it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    unlock(this.dir);
    try {
      rmdirSync(this.dir); // only succeeds when empty
    } catch {
      // something is still spooled: the next run delivers it
    }
  }

  #ensure(lease: string): LeaseState {
    let state = this.#leases.get(lease);
    if (!state) {
      // A lease nobody began (should not happen): keep its output anyway.
      this.begin({ lease, jobId: '', taskIndex: -1, attempt: 0 });
      state = this.#leases.get(lease)!;
    }
    if (!state.created) {
      mkdirSync(state.folder, { recursive: true });
      writeAtomic(join(state.folder, 'task.json'), JSON.stringify(state.task));
      state.created = true;
    }
    return state;
  }

  /** Drops the oldest batches (of any lease) until the log batches fit in `maxBytes`. */
  #enforceBound(): void {
    while (this.#bytes > this.maxBytes) {
      let oldest: { state: LeaseState; index: number; seq: number } | undefined;
      for (const state of this.#leases.values()) {
        const index = state.batches.findIndex((b) => b.dropped === undefined);
        const batch = state.batches[index];
        if (batch && (!oldest || batch.seq < oldest.seq)) oldest = { state, index, seq: batch.seq };
      }
      if (!oldest) return;
      const { state, index } = oldest;
      const batch = state.batches[index]!;
      this.#bytes -= batch.bytes;
      this.#droppedBytes += batch.bytes;
      unlinkQuiet(join(state.folder, batchFile(batch.seq, false, batch.batch)));
      // Every batch before it is a marker (it was the lease's oldest output): merge into the
      // one right before it, or leave a marker in its place. A marker goes out under the
      // number of the last batch it stands for, so the numbers sent keep increasing.
      const number = batch.batch === undefined ? {} : { batch: batch.batch };
      const before = index > 0 ? state.batches[index - 1] : undefined;
      if (before?.dropped !== undefined) {
        before.dropped += batch.bytes;
        Object.assign(before, number);
        writeAtomic(join(state.folder, batchFile(before.seq, true)), JSON.stringify(before));
        state.batches.splice(index, 1);
      } else {
        const marker: Batch = { seq: batch.seq, ...number, bytes: 0, dropped: batch.bytes };
        writeAtomic(join(state.folder, batchFile(batch.seq, true)), JSON.stringify(marker));
        state.batches[index] = marker;
      }
    }
  }

  /** Reads the folders an earlier run left. */
  #scan(): void {
    const found: Array<SpoolEntry & { firstSeq: number }> = [];
    for (const name of readdirSync(this.dir)) {
      const folder = join(this.dir, name);
      if (/^task-group-[A-Za-z0-9-]+\.json$/.test(name)) {
        const record = readJson<TaskGroupRecord>(folder);
        if (typeof record?.id === 'string' && folder.endsWith(groupFile(record.id))) {
          this.#groupsFound.push(record);
        } else {
          unlinkQuiet(folder);
        }
        continue;
      }
      if (name.startsWith('task-group-') && name.endsWith('.tmp')) {
        unlinkQuiet(folder);
        continue;
      }
      if (!isDirectory(folder)) continue;
      const files = readdirSync(folder);
      for (const f of files) if (f.endsWith('.tmp')) unlinkQuiet(join(folder, f));
      const task = readJson<SpooledTask>(join(folder, 'task.json'));
      const result = readJson<TaskReportInput>(join(folder, 'result.json'));
      const lease = task?.lease ?? result?.lease;
      if (!lease) {
        rmSync(folder, { recursive: true, force: true });
        continue;
      }
      const batches: Batch[] = [];
      for (const f of files) {
        const m = /^(log|drop)-(\d+)(?:-(\d+))?\.json$/.exec(f);
        if (!m) continue;
        const seq = Number(m[2]);
        if (m[1] === 'drop') {
          const marker = readJson<Batch>(join(folder, f));
          const number = Number.isSafeInteger(marker?.batch) ? { batch: marker!.batch! } : {};
          batches.push({ seq, ...number, bytes: 0, dropped: Number(marker?.dropped ?? 0) });
        } else {
          const bytes = statSync(join(folder, f)).size;
          batches.push({ seq, ...(m[3] === undefined ? {} : { batch: Number(m[3]) }), bytes });
          this.#bytes += bytes;
        }
        this.#seq = Math.max(this.#seq, seq);
      }
      batches.sort((a, b) => a.seq - b.seq);
      const meta = task ?? { lease, jobId: '', taskIndex: -1, attempt: 0 };
      const firstSeq = batches[0]?.seq ?? Number.MAX_SAFE_INTEGER;
      this.#leases.set(lease, { task: meta, folder, created: true, batches, firstSeq });
      found.push({ task: meta, result, firstSeq });
    }
    found.sort((a, b) => a.firstSeq - b.firstSeq);
    this.#found.push(...found.map(({ task, result }) => ({ task, result })));
  }
}

/** Lease tokens are base64url; anything else is hashed so it is always a safe file name. */
function folderName(lease: string): string {
  return /^[A-Za-z0-9_-]{1,128}$/.test(lease)
    ? `lease-${lease}`
    : `lease-${createHash('sha256').update(lease).digest('hex').slice(0, 32)}`;
}

/** A task group's record (ids are `[a-z0-9-]`, see `newGroupId`). */
function groupFile(id: string): string {
  return `task-group-${id.replace(/[^A-Za-z0-9-]/g, '_')}.json`;
}

/** A log batch's file (`batch`: its number, in the name so the spool is read without opening them). */
function batchFile(seq: number, marker: boolean, batch?: number): string {
  const number = marker || batch === undefined ? '' : `-${batch}`;
  return `${marker ? 'drop' : 'log'}-${String(seq).padStart(12, '0')}${number}.json`;
}

/**
 * Writes `path` by way of a temporary file and a rename, so it is never half-written.
 * `durable`: flushed to the disk before the rename, so it survives the machine losing
 * power too (results: one per task, and never dropped; log batches are not worth a flush).
 */
function writeAtomic(path: string, text: string, durable = false): void {
  const tmp = `${path}.tmp`;
  if (durable) {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } else {
    writeFileSync(tmp, text);
  }
  renameSync(tmp, path);
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

// ----- the lock: one live worker per spool folder -----

function lockFile(dir: string): string {
  return join(dir, 'worker.pid');
}

function lock(dir: string): void {
  if (heldHere.has(dir)) {
    throw new SpoolInUseError(`spool folder ${dir} is in use by another worker in this process`);
  }
  const file = lockFile(dir);
  let holder: number | undefined;
  try {
    holder = Number(readFileSync(file, 'utf8').trim());
  } catch {
    holder = undefined;
  }
  if (holder && holder !== process.pid && alive(holder)) {
    throw new SpoolInUseError(`spool folder ${dir} is in use by the worker with pid ${holder}`);
  }
  writeAtomic(file, String(process.pid));
  heldHere.add(dir);
}

function unlock(dir: string): void {
  heldHere.delete(dir);
  unlinkQuiet(lockFile(dir));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
