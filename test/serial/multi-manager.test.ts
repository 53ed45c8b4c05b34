import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DroverClient } from '../../src/client/index.js';
import { createDatabase, databaseUrl, dropDatabase } from '../../src/store/postgres/index.js';
import {
  postgresUnavailable,
  TEST_POSTGRES_URL,
} from '../../src/store/conformance/postgres-databases.js';
import { CLI, until } from '../farm.js';

/**
 * Several managers on one PostgreSQL database, with real manager and worker processes.
 * These tests restart PostgreSQL, so they run on their own (vitest.serial.config.ts), after
 * the parallel suite.
 */

const APPEND = ['-c', 'echo "$1" >> "$2"', 'append'];

interface Cluster {
  managers: Array<{ proc: ChildProcess; url: string }>;
  workers: ChildProcess[];
  client: DroverClient;
  out: string;
  dbName: string;
}

let cluster: Cluster | undefined;
let skip: string | undefined;

beforeAll(async () => {
  skip = await postgresUnavailable();
  if (skip && process.env.DROVER_REQUIRE_POSTGRES === '1') throw new Error(skip);
  if (skip) console.warn(`skipping the several-managers tests: ${skip}`);
});

afterEach(async () => {
  if (!cluster) return;
  const c = cluster;
  cluster = undefined;
  for (const p of [...c.workers, ...c.managers.map((m) => m.proc)]) {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
  await new Promise((r) => setTimeout(r, 300));
  await dropDatabase(TEST_POSTGRES_URL, c.dbName).catch(() => undefined);
});

function startManagerProcess(
  db: string,
): Promise<{ proc: ChildProcess; url: string; data: string }> {
  const data = mkdtempSync(join(tmpdir(), 'drover-mgr-'));
  const proc = spawn(
    process.execPath,
    [
      CLI,
      'manager',
      '--db',
      db,
      '--port',
      '0',
      '--log-level',
      'warn',
      '--heartbeat-ms',
      '300',
      '--lease-ttl-ms',
      '4000',
      '--stall-after-ms',
      '4000',
      '--house-keeping-ms',
      '200',
      '--data',
      data,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let err = '';
    proc.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) resolve({ proc, url: m[1]!, data });
    });
    proc.once('exit', (code) => reject(new Error(`manager exited with ${code}: ${err}`)));
  });
}

async function startCluster(managers: number, workers: number): Promise<Cluster> {
  const dbName = `drover_mm_${randomBytes(4).toString('hex')}`;
  await createDatabase(TEST_POSTGRES_URL, dbName);
  const db = databaseUrl(TEST_POSTGRES_URL, dbName);
  // The first manager migrates; the others start beside it.
  const ms = [await startManagerProcess(db)];
  ms.push(
    ...(await Promise.all(Array.from({ length: managers - 1 }, () => startManagerProcess(db)))),
  );
  const urls = ms.map((m) => m.url);
  // The first manager made the farm's admin token; the workers get a worker token.
  const adminToken = readFileSync(join(ms[0]!.data, 'admin-token'), 'utf8').trim();
  const client = new DroverClient({ url: urls, token: adminToken });
  const { token: workerToken } = await client.createToken('workers', 'worker');
  const ws = Array.from({ length: workers }, (_, i) => {
    // Spread the workers: each starts on a different manager and fails over to the others.
    const order = [...urls.slice(i % urls.length), ...urls.slice(0, i % urls.length)];
    return spawn(
      process.execPath,
      [
        CLI,
        'worker',
        '--manager',
        order.join(','),
        '--name',
        `w${i}`,
        '--drain-timeout',
        '1',
        '--log-level',
        'error',
      ],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
        // The token goes in the environment, as `drover dev` does it.
        env: { ...process.env, DROVER_TOKEN: workerToken },
      },
    );
  });
  const out = join(mkdtempSync(join(tmpdir(), 'drover-mm-')), 'frames.txt');
  writeFileSync(out, '');
  cluster = { managers: ms, workers: ws, client, out, dbName };
  return cluster;
}

async function submitFrames(c: Cluster, total: number, jobs: number): Promise<string[]> {
  const per = total / jobs;
  const ids: string[] = [];
  for (let k = 0; k < jobs; k++) {
    const job = await c.client.submitJob({
      name: `append ${k}`,
      plugin: 'CommandLine',
      pluginInfo: { executable: '/bin/sh', arguments: [...APPEND, '{frame}', c.out] },
      frames: `${k * per + 1}-${(k + 1) * per}`,
    });
    ids.push(job.id);
  }
  return ids;
}

async function completed(c: Cluster, ids: string[]): Promise<number> {
  let n = 0;
  for (const id of ids) n += (await c.client.getJob(id)).counts.completed;
  return n;
}

/** Every frame in the file exactly once, every task completed once, no errors. */
async function expectExactlyOnce(c: Cluster, ids: string[], total: number): Promise<void> {
  const lines = readFileSync(c.out, 'utf8').split('\n').filter(Boolean).map(Number);
  const counts = new Map<number, number>();
  for (const f of lines) counts.set(f, (counts.get(f) ?? 0) + 1);
  const duplicates = [...counts.values()].filter((n) => n > 1).length;
  const missing = Array.from({ length: total }, (_, i) => i + 1).filter((f) => !counts.has(f));
  expect({ lines: lines.length, duplicates, missing: missing.length }).toEqual({
    lines: total,
    duplicates: 0,
    missing: 0,
  });
  for (const id of ids) {
    const job = await c.client.getJob(id);
    expect(job.state).toBe('completed');
    expect(job.errorCount).toBe(0);
    const done = new Map<number, number>();
    for (let after = 0; ;) {
      const events = await c.client.listEvents({
        after,
        job: id,
        type: 'task.completed',
        limit: 1000,
      });
      if (events.length === 0) break;
      for (const e of events) done.set(e.taskIndex!, (done.get(e.taskIndex!) ?? 0) + 1);
      after = events[events.length - 1]!.seq;
    }
    expect(done.size).toBe(job.taskCount);
    expect([...done.values()].every((n) => n === 1)).toBe(true);
  }
}

describe('several managers on one PostgreSQL database', () => {
  it('runs 2,000 tasks on 3 managers and 8 workers exactly once, with one manager SIGKILLed mid-run', async (ctx) => {
    if (skip) return ctx.skip();
    const c = await startCluster(3, 8);
    const started = Date.now();
    const ids = await submitFrames(c, 2000, 4);
    await until('a quarter of the tasks', async () => (await completed(c, ids)) >= 500, 120_000);
    c.managers[0]!.proc.kill('SIGKILL');
    await until('every task', async () => (await completed(c, ids)) === 2000, 240_000);
    console.log(
      `several managers: 2000 tasks, 3 managers (one killed), 8 workers in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    await expectExactlyOnce(c, ids, 2000);
  }, 300_000);

  it('completes a run across a PostgreSQL restart', async (ctx) => {
    if (skip) return ctx.skip();
    const c = await startCluster(2, 4);
    const ids = await submitFrames(c, 400, 2);
    await until('a quarter of the tasks', async () => (await completed(c, ids)) >= 100, 120_000);
    const version = execFileSync('ls', ['/etc/postgresql']).toString().trim().split('\n')[0]!;
    execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'restart'], {
      stdio: 'inherit',
    });
    await until(
      'every task',
      async () => {
        try {
          return (await completed(c, ids)) === 400;
        } catch {
          return false; // a manager answering 503 while PostgreSQL comes back
        }
      },
      240_000,
    );
    await expectExactlyOnce(c, ids, 400);
  }, 300_000);
});
