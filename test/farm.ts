import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { DroverClient } from '../src/client/index.js';
import type { Job } from '../src/core/types.js';
import { startManager, type RunningManager } from '../src/manager/server.js';

/** The compiled CLI: `npm test` builds before it runs the tests. */
export const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');

/** Short timings so faults show up in seconds, not minutes. */
export const FAST = {
  heartbeatIntervalMs: 300,
  leaseTtlMs: 2_000,
  stallAfterMs: 2_000,
  houseKeepingIntervalMs: 200,
  houseCleaningIntervalMs: 1_000,
};

export interface TestFarm {
  dir: string;
  workerToken: string;
  manager: RunningManager;
  client: DroverClient;
  workers: Map<string, ChildProcess>;
  startWorker(name: string, args?: string[]): ChildProcess;
  stop(): Promise<void>;
}

/** A real manager (in this process, on a real SQLite file) and real worker processes. */
export async function startFarm(): Promise<TestFarm> {
  const dir = mkdtempSync(join(tmpdir(), 'drover-e2e-'));
  const manager = await startManager({
    dataDir: dir,
    port: 0,
    settings: FAST,
    logger: pino({ level: 'silent' }),
    // The monitor shows images rendered under the farm's folder.
    outputRoots: [dir],
  });
  // Authentication is on, as in production: the admin token the manager made on its first
  // start, and a worker token for the worker processes.
  const client = new DroverClient({ url: manager.url, token: manager.adminToken! });
  const { secret: workerToken } = await manager.auth!.createToken('test-workers', 'worker');
  const workers = new Map<string, ChildProcess>();
  const farm: TestFarm = {
    dir,
    workerToken,
    manager,
    client,
    workers,
    startWorker(name, args = []) {
      const child = spawn(
        process.execPath,
        [
          CLI,
          'worker',
          '--manager',
          manager.url,
          '--name',
          name,
          '--drain-timeout',
          '2',
          '--log-level',
          'warn',
          ...args,
        ],
        {
          stdio: ['ignore', 'inherit', 'inherit'],
          env: { ...process.env, DROVER_TOKEN: workerToken },
        },
      );
      workers.set(name, child);
      return child;
    },
    async stop() {
      await Promise.all([...workers.values()].map(killProcess));
      await manager.close();
    },
  };
  return farm;
}

/** Polls until `check` returns a value (not undefined/false) or the time runs out. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function untilJobState(
  client: DroverClient,
  id: string,
  states: string[],
  timeoutMs = 60_000,
): Promise<Job> {
  return until(
    `job ${id} to be ${states.join('/')}`,
    async () => {
      const job = await client.getJob(id);
      return states.includes(job.state) ? job : undefined;
    },
    timeoutMs,
  );
}

/** Sends `signal`, then SIGKILL if the process has not exited in 30 s; resolves once it exited. */
function endProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const force = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', () => {
      clearTimeout(force);
      done();
    });
    child.kill(signal);
  });
}

/** SIGTERM, then SIGKILL if the process has not exited in 30 s; resolves once it exited. */
export const stopProcess = (child: ChildProcess): Promise<void> => endProcess(child, 'SIGTERM');

/** SIGKILL; resolves once the process exited. */
export const killProcess = (child: ChildProcess): Promise<void> => endProcess(child, 'SIGKILL');

/**
 * Starts the real `drover dev` on `data` with `args` (`--port 0` and `--data` are added);
 * resolves once it printed its manager address, with what it printed so far as `out()`.
 */
export async function startDev(
  data: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ child: ChildProcess; url: string; out: () => string }> {
  const child = spawn(process.execPath, [CLI, 'dev', '--data', data, '--port', '0', ...args], {
    cwd: data,
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const url = await until(
    'the farm to start',
    () => {
      if (!out.includes('Ctrl-C stops the farm.')) return undefined;
      return /manager\s+(http:\S+)/.exec(out)?.[1];
    },
    60_000,
  ).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  return { child, url, out: () => out };
}

/** A reply as `overHttp` gives it (the shape of Fastify's `inject` replies). */
export interface HttpAnswer {
  statusCode: number;
  body: string;
  json<T = unknown>(): T;
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/**
 * One request over real HTTP, its target sent byte for byte. In-process requests
 * (`app.inject`) parse the target as a WHATWG URL first, which resolves `.` and `..`
 * segments — `%2e%2e` included — so what the router sees is not what a client sent.
 */
export function overHttp(
  base: URL,
  method: string,
  target: string,
  headers: Record<string, string>,
  payload: string | undefined,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: base.hostname,
        port: base.port,
        method,
        path: target,
        agent,
        headers: {
          ...headers,
          ...(payload !== undefined ? { 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () =>
          resolve({
            statusCode: res.statusCode ?? 0,
            body,
            json: <T>() => JSON.parse(body) as T,
          }),
        );
      },
    );
    req.on('error', (err) =>
      reject(new Error(`${method} ${target.slice(0, 200)}: ${err.message}`)),
    );
    req.end(payload);
  });
}
