import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { JsonClient } from './http.js';

/** The package root (dist-bench/bench/lib → three folders up). */
export const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');

/** A real `drover manager` process (the compiled CLI in dist/), listening on a free port. */
export interface ManagerProcess {
  url: string;
  pid: number;
  /** An admin client (the admin token from `<dataDir>/admin-token`). */
  admin: JsonClient;
  stop(): Promise<void>;
}

export interface ManagerProcessOptions {
  dataDir: string;
  /** SQLite file or postgres:// URL (default `<dataDir>/drover.db`). */
  db?: string;
}

export async function startManagerProcess(o: ManagerProcessOptions): Promise<ManagerProcess> {
  // BENCH_MANAGER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the managers.
  const nodeArgs = (process.env.BENCH_MANAGER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const args = [
    ...nodeArgs,
    CLI,
    'manager',
    '--data',
    o.dataDir,
    '--port',
    '0',
    '--log-level',
    'warn',
  ];
  if (o.db) args.push('--db', o.db);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise<string>((done, fail) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const m = /listening on (http:\/\/\S+)/.exec(text);
      if (m) {
        child.stderr.off('data', onData);
        // Keep draining stderr so a chatty manager never blocks on a full pipe.
        child.stderr.on('data', (c: Buffer) => process.stderr.write(c));
        done(m[1]!);
      }
    };
    child.stderr.on('data', onData);
    child.once('exit', (code) =>
      fail(new Error(`manager exited (${code}) before listening: ${text}`)),
    );
  });
  const token = (await readFile(join(o.dataDir, 'admin-token'), 'utf8')).trim();
  const admin = new JsonClient(url, token);
  return { url, pid: child.pid!, admin, stop: () => stopChild(child, admin) };
}

async function stopChild(child: ChildProcess, admin: JsonClient): Promise<void> {
  admin.close();
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** A worker token made with the admin token (POST /api/v1/tokens). */
export async function workerToken(m: ManagerProcess): Promise<string> {
  const r = await m.admin.call<{ token: string }>('POST', '/api/v1/tokens', {
    name: `bench-${Date.now()}`,
    role: 'worker',
  });
  return r.token;
}

/** The job fields every bench job shares: a zero-work command line, no outputs. */
export function benchJob(fields: Record<string, unknown>): Record<string, unknown> {
  return { plugin: 'CommandLine', pluginInfo: { executable: '/bin/true' }, ...fields };
}

/** Submits a job over HTTP; returns its id. */
export async function submitJob(
  m: ManagerProcess,
  fields: Record<string, unknown>,
): Promise<string> {
  const r = await m.admin.call<{ job: { id: string } }>('POST', '/api/v1/jobs', benchJob(fields));
  return r.job.id;
}
