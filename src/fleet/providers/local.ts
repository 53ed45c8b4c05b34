import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { text } from '../../core/text.js';
import {
  ProviderError,
  workerName,
  type FleetProvider,
  type LaunchRequest,
  type LaunchResult,
  type Machine,
} from '../provider.js';
import { spawnWorkerProcess, workerTokenPath } from './worker-process.js';

/**
 * The `local` provider: a machine is a `drover worker` process on this machine (the
 * miniature farm's fleets, `drover dev --autoscale`, and the scaler's end-to-end tests).
 *
 * Each machine has a small state file in `<data>/fleet-machines/local/<id>.json` (pid, farm,
 * fleet, worker, client token, start time): the files, not this object, are the truth, so a
 * manager that restarts on the same data folder lists (adopts) and terminates the workers its
 * predecessor started. Workers run in their own process group and outlive the manager; they
 * are stopped by `terminate` (or `close` when `terminateOnClose`).
 *
 * The fleet's worker token reaches a process only through a file private to this user
 * (`<data>/worker-tokens/<worker>`, mode 0600, `--token-file`): never on the command line
 * (readable by everyone in `ps`) nor in its environment (inherited by every task it runs).
 */

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

export const localSettingsSchema = z
  .object({
    /** Most live machines of one fleet on this machine, whatever the fleet's `max` says. */
    maxMachines: z.number().int().min(1).max(64).default(16),
    /** `drover worker --drain-timeout`: seconds a stopped worker lets its tasks finish. */
    drainTimeout: z.number().int().min(0).max(3600).default(5),
    logLevel: z.enum(logLevels).default('info'),
  })
  .strict();
export type LocalSettings = z.infer<typeof localSettingsSchema>;

export interface LocalProviderOptions {
  /** The farm's data folder (state files, token files, worker logs). */
  data: string;
  /** The CLI entry point workers run (default: this package's `dist/cli/main.js`). */
  cliMain?: string;
  /**
   * SIGTERM → SIGKILL grace of `terminate`, on top of the fleet's drain timeout (10 s): a
   * worker that has not exited by then is killed.
   */
  killGraceMs?: number;
  /** `close()` terminates every machine of this data folder (default: leaves them running). */
  terminateOnClose?: boolean;
}

/** What a machine's state file holds. */
const recordSchema = z.object({
  id: text(),
  pid: z.number().int().positive(),
  farm: text(),
  fleet: text(),
  worker: text(),
  region: text(),
  capacity: z.enum(['spot', 'on-demand']),
  clientToken: text(),
  launchedAt: z.number(),
  drainTimeoutS: z.number(),
  stoppingAt: z.number().optional(),
  stoppedAt: z.number().optional(),
});
type MachineRecord = z.infer<typeof recordSchema>;

/** Stopped machines' records are kept this long (client tokens stay idempotent meanwhile). */
const KEEP_STOPPED_MS = 24 * 3600_000;
/** Largest launch request taken at once. */
const MAX_LAUNCH = 1000;

export class LocalProvider implements FleetProvider {
  readonly machineIdPrefix = 'local-';
  readonly kind = 'local';
  readonly settingsSchema = localSettingsSchema;
  readonly #o: LocalProviderOptions;
  readonly #dir: string;
  /** One launch/terminate at a time: a retried launch sees the first one's records. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Pending SIGKILL escalations, so `close` can wait for them. */
  readonly #stopping = new Map<string, Promise<void>>();

  constructor(options: LocalProviderOptions) {
    this.#o = options;
    this.#dir = join(options.data, 'fleet-machines', 'local');
  }

  launch(request: LaunchRequest): Promise<LaunchResult> {
    return this.#serial(() => Promise.resolve(this.#launch(request)));
  }

  terminate(farm: string, ids: readonly string[]): Promise<void> {
    return this.#serial(() => {
      for (const id of ids) {
        const record = this.#read(id);
        if (!record || record.farm !== farm || record.stoppedAt !== undefined) continue;
        this.#stop(record);
      }
      return Promise.resolve();
    });
  }

  list(farm: string): Promise<Machine[]> {
    return this.#serial(() =>
      Promise.resolve(
        this.#records()
          .filter((r) => r.farm === farm)
          .map((r) => this.#refresh(r))
          .filter((r) => r.stoppedAt === undefined)
          .map(toMachine),
      ),
    );
  }

  /**
   * Tells machine `id`'s worker its machine is going away (SIGUSR2, as EC2's two-minute spot
   * notice does through the instance metadata): it stops claiming and hands back its tasks.
   * False when no such live machine of `farm` exists.
   */
  interrupt(farm: string, id: string): Promise<boolean> {
    return this.#serial(() => {
      const record = this.#read(id);
      if (!record || record.farm !== farm) return Promise.resolve(false);
      const live = this.#refresh(record);
      if (live.stoppedAt !== undefined) return Promise.resolve(false);
      return Promise.resolve(signal(live.pid, 'SIGUSR2'));
    });
  }

  async close(): Promise<void> {
    if (this.#o.terminateOnClose) {
      await this.#serial(() => {
        for (const r of this.#records()) {
          if (r.stoppedAt === undefined && r.stoppingAt === undefined) this.#stop(r);
        }
        return Promise.resolve();
      });
    }
    await Promise.all([...this.#stopping.values()]);
  }

  #launch(request: LaunchRequest): LaunchResult {
    const parsed = localSettingsSchema.safeParse(request.settings ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = ['settings', ...(issue?.path ?? []).map(String)].join('.');
      throw new ProviderError('InvalidSettings', `${field}: ${issue?.message ?? 'invalid'}`, false);
    }
    const settings = parsed.data;
    if (!Number.isInteger(request.count) || request.count < 0 || request.count > MAX_LAUNCH) {
      throw new ProviderError(
        'InvalidCount',
        `count: must be a whole number from 0 to ${MAX_LAUNCH}`,
        false,
      );
    }
    const records = this.#records().map((r) => this.#refresh(r));
    const earlier = records.filter(
      (r) =>
        r.farm === request.farm &&
        r.fleet === request.fleet &&
        r.clientToken === request.clientToken,
    );
    if (earlier.length > 0) return { machines: earlier.map(toMachine), errors: [] };

    const live = records.filter(
      (r) => r.farm === request.farm && r.fleet === request.fleet && r.stoppedAt === undefined,
    ).length;
    const n = Math.max(0, Math.min(request.count, settings.maxMachines - live));
    const result: LaunchResult = { machines: [], errors: [] };
    if (n < request.count) {
      result.errors.push({
        code: 'MachineLimit',
        message: `${request.count - n} not launched: fleet ${request.fleet} has ${live} of at most ${settings.maxMachines} local workers (settings.maxMachines)`,
      });
    }
    for (let i = 0; i < n; i++) {
      const id = `${this.machineIdPrefix}${randomBytes(4).toString('hex')}`;
      const worker = workerName(request.fleet, id);
      const tokenFile = this.#writeToken(worker, request.boot.token);
      const child = spawnWorkerProcess({
        ...(this.#o.cliMain ? { cliMain: this.#o.cliMain } : {}),
        managerUrls: request.boot.managerUrls,
        name: worker,
        region: request.boot.region,
        pools: request.boot.pools,
        groups: request.boot.groups,
        slots: request.boot.slots,
        drainTimeoutS: settings.drainTimeout,
        logLevel: settings.logLevel,
        tokenFile,
        output: { file: join(this.#o.data, 'logs', `${worker}.log`) },
        detached: true,
      });
      // Errors (there are none for node itself but a full process table) end as an exit.
      child.on('error', () => undefined);
      child.unref();
      if (child.pid === undefined) {
        rmSync(tokenFile, { force: true });
        result.errors.push({ code: 'SpawnFailed', message: `could not start ${worker}` });
        continue;
      }
      const record: MachineRecord = {
        id,
        pid: child.pid,
        farm: request.farm,
        fleet: request.fleet,
        worker,
        region: request.boot.region,
        capacity: request.capacity,
        clientToken: request.clientToken,
        launchedAt: Date.now(),
        drainTimeoutS: settings.drainTimeout,
      };
      this.#write(record);
      result.machines.push(toMachine(record));
    }
    return result;
  }

  /** SIGTERM now, SIGKILL after the drain timeout + grace if it is still there. */
  #stop(record: MachineRecord): void {
    const live = this.#refresh(record);
    if (live.stoppedAt !== undefined) return;
    if (live.stoppingAt === undefined) {
      this.#write({ ...live, stoppingAt: Date.now() });
      signal(live.pid, 'SIGTERM');
    }
    if (this.#stopping.has(live.id)) return;
    const graceMs = live.drainTimeoutS * 1000 + (this.#o.killGraceMs ?? 10_000);
    const deadline = Date.now() + graceMs;
    const watch = (async () => {
      while (isWorker(live.pid, live.worker)) {
        if (Date.now() >= deadline) {
          signal(live.pid, 'SIGKILL');
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await this.#serial(() => {
        const r = this.#read(live.id);
        if (r) this.#refresh(r);
        return Promise.resolve();
      });
    })().finally(() => this.#stopping.delete(live.id));
    this.#stopping.set(live.id, watch);
  }

  /** The record as it is now: a process that is gone is marked stopped (token file removed). */
  #refresh(record: MachineRecord): MachineRecord {
    if (record.stoppedAt !== undefined) return record;
    if (isWorker(record.pid, record.worker)) return record;
    rmSync(workerTokenPath(this.#o.data, record.worker), { force: true });
    const stopped = { ...record, stoppedAt: Date.now() };
    this.#write(stopped);
    return stopped;
  }

  #writeToken(worker: string, token: string): string {
    const dir = join(this.#o.data, 'worker-tokens');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    const file = workerTokenPath(this.#o.data, worker);
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, `${token}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
    return file;
  }

  #records(): MachineRecord[] {
    if (!existsSync(this.#dir)) return [];
    const now = Date.now();
    const out: MachineRecord[] = [];
    for (const name of readdirSync(this.#dir)) {
      if (!name.endsWith('.json')) continue;
      const r = this.#read(name.slice(0, -'.json'.length));
      if (!r) continue;
      if (r.stoppedAt !== undefined && now - r.stoppedAt > KEEP_STOPPED_MS) {
        rmSync(join(this.#dir, name), { force: true });
        continue;
      }
      out.push(r);
    }
    return out.sort((a, b) => a.launchedAt - b.launchedAt || a.id.localeCompare(b.id));
  }

  #read(id: string): MachineRecord | undefined {
    if (!/^local-[0-9a-f]{8}$/.test(id)) return undefined;
    try {
      const parsed = recordSchema.safeParse(
        JSON.parse(readFileSync(join(this.#dir, `${id}.json`), 'utf8')),
      );
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  #write(record: MachineRecord): void {
    mkdirSync(this.#dir, { recursive: true });
    const file = join(this.#dir, `${record.id}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify(record));
    renameSync(`${file}.tmp`, file);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }
}

function toMachine(r: MachineRecord): Machine {
  return {
    id: r.id,
    farm: r.farm,
    fleet: r.fleet,
    state:
      r.stoppedAt !== undefined ? 'stopped' : r.stoppingAt !== undefined ? 'stopping' : 'running',
    launchedAt: r.launchedAt,
    capacity: r.capacity,
  };
}

function signal(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether `pid` is still the worker `worker` (not a process that got its pid since): on
 * Linux its command line must name it; elsewhere the pid being alive is all there is.
 */
function isWorker(pid: number, worker: string): boolean {
  if (!signal(pid, 0)) return false;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return process.platform !== 'linux';
  }
  // A zombie (exited, not yet reaped by its parent) has an empty command line.
  return cmdline.split('\0').some((arg, i, all) => arg === worker && all[i - 1] === '--name');
}
