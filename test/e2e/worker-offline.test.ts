import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { createServer, Socket, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DroverClient } from '../../src/client/index.js';
import type { ManagerSettings } from '../../src/manager/config.js';
import { startManager, type RunningManager } from '../../src/manager/server.js';
import { startWorker, type RunningWorker } from '../../src/worker/agent.js';
import { CLI, FAST, until, untilJobState } from '../farm.js';

/**
 * A worker cut off from its manager: it keeps rendering, keeps the task's log and result in
 * its on-disk spool, and delivers them when the manager is back — also when the worker
 * process itself was restarted meanwhile. A result for a lease that went to another worker
 * meanwhile is refused, logged, and not applied. Real manager (in this process, real SQLite
 * file, closed and started again on the same port), real task processes.
 */

const node = process.execPath;
/** Leases outlive the outage: the manager must not requeue what the worker is finishing. */
const PATIENT: Partial<ManagerSettings> = { ...FAST, leaseTtlMs: 60_000, stallAfterMs: 60_000 };
const quiet = pino({ level: 'silent' });

/** Prints `line 0` … `line N-1` every `ms`, then `done`, then creates `marker`. */
function slowScript(lines: number, ms: number): string {
  return [
    'let i = 0;',
    'const t = setInterval(() => {',
    `  if (i < ${lines}) { console.log("line " + i++); return; }`,
    '  clearInterval(t); console.log("done");',
    '  require("fs").writeFileSync(process.argv[1], "");',
    `}, ${ms});`,
  ].join('\n');
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
}, 60_000);

interface Manager extends RunningManager {
  /** An admin client and a worker token (authentication is on, as in production). */
  client: DroverClient;
  workerToken: string;
}

async function manager(dir: string, port = 0, settings = PATIENT): Promise<Manager> {
  const started = await startManager({ dataDir: dir, port, settings, logger: quiet });
  const { secret: workerToken } = await started.auth!.createToken(`workers-${port}`, 'worker');
  const m: Manager = Object.assign(started, {
    client: new DroverClient({ url: started.url, token: started.adminToken! }),
    workerToken,
  });
  let closed = false;
  const close = m.close.bind(m);
  m.close = async () => {
    if (closed) return;
    closed = true;
    await close();
  };
  cleanups.push(async () => {
    // A keep-alive connection that is not idle when the manager closes can hold its close
    // for Fastify's keep-alive timeout (72 s): do not wait for that here.
    await Promise.race([m.close(), new Promise((r) => setTimeout(r, 5_000))]);
  });
  return m;
}

const portOf = (url: string) => Number(new URL(url).port);

async function fullLog(client: DroverClient, job: string, attempt: number): Promise<string> {
  let text = '';
  for (let after = 0; ;) {
    const { chunks } = await client.taskLog(job, 0, { attempt, after, limit: 500 });
    if (chunks.length === 0) return text;
    text += chunks.map((c) => c.text).join('');
    after = chunks.at(-1)!.seq;
  }
}

async function completedEvents(client: DroverClient, job: string): Promise<number> {
  return (await client.listEvents({ job, type: 'task.completed', limit: 1000 })).length;
}

function inProcessWorker(
  url: string,
  token: string,
  name: string,
  spoolDir: string,
  logLines?: string[],
): RunningWorker {
  const w = startWorker({
    manager: url,
    token,
    name,
    spoolDir,
    claimWaitMs: 500,
    heartbeatIntervalMs: 300,
    retryBaseMs: 50,
    retryMaxMs: 300,
    logFlushMs: 50,
    logger: logLines
      ? pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) })
      : quiet,
  });
  cleanups.push(async () => {
    w.stopNow();
    await w.done.catch(() => undefined);
  });
  return w;
}

function workerProcess(url: string, token: string, name: string, spoolDir: string): ChildProcess {
  const child = spawn(
    node,
    [CLI, 'worker', '--manager', url, '--name', name, '--spool-dir', spoolDir],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DROVER_TOKEN: token } },
  );
  cleanups.push(() => killed(child));
  return child;
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', () => done());
    child.kill('SIGKILL');
  });
}

/** Spooled result files (one per finished task whose report is not acknowledged yet). */
const spooledResults = (spoolDir: string) =>
  existsSync(spoolDir)
    ? readdirSync(spoolDir).filter((d) => existsSync(join(spoolDir, d, 'result.json')))
    : [];

const expectedLog = (lines: number) =>
  Array.from({ length: lines }, (_, i) => `line ${i}\n`).join('') + 'done\n';

describe('a worker cut off from its manager', () => {
  it('keeps rendering and delivers the completion and the full log when the manager is back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-offline-'));
    const spoolDir = join(dir, 'spool');
    let m = await manager(dir);
    const port = portOf(m.url);
    const client = m.client;
    inProcessWorker(m.url, m.workerToken, 'w1', spoolDir);
    const marker = join(dir, 'finished');
    const job = await client.submitJob({
      name: 'offline',
      plugin: 'CommandLine',
      pluginInfo: { executable: node, arguments: ['-e', slowScript(30, 100), marker] },
      frames: '1',
    });
    await until('the first log line', async () =>
      (await fullLog(client, job.id, 1)).includes('line 0'),
    );
    await m.close(); // the manager goes away while the task renders

    await until('the task to finish while the manager is away', () => existsSync(marker), 30_000);
    await until('its result in the spool', () => spooledResults(spoolDir).length === 1);

    m = await manager(dir, port);
    const done = await untilJobState(client, job.id, ['completed', 'failed'], 60_000);
    expect(done.state).toBe('completed');
    const [task] = await client.listTasks(job.id);
    expect(task).toMatchObject({ state: 'completed', worker: 'w1', attempt: 1 });
    expect(await fullLog(client, job.id, 1)).toContain(expectedLog(30));
    expect(await completedEvents(client, job.id)).toBe(1);
    await until('the spool to be empty', () => spooledResults(spoolDir).length === 0);
  }, 120_000);

  it('delivers what it spooled after the worker process itself was killed and restarted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-offline-'));
    const spoolDir = join(dir, 'spool');
    let m = await manager(dir);
    const port = portOf(m.url);
    const client = m.client;
    const first = workerProcess(m.url, m.workerToken, 'w1', spoolDir);
    const marker = join(dir, 'finished');
    const job = await client.submitJob({
      name: 'offline restart',
      plugin: 'CommandLine',
      pluginInfo: { executable: node, arguments: ['-e', slowScript(20, 100), marker] },
      frames: '1',
    });
    await until('the first log line', async () =>
      (await fullLog(client, job.id, 1)).includes('line 0'),
    );
    await m.close();
    await until('the task to finish while the manager is away', () => existsSync(marker), 30_000);
    await until('its result in the spool', () => spooledResults(spoolDir).length === 1);
    await killed(first); // SIGKILL: nothing is delivered on the way out

    m = await manager(dir, port);
    workerProcess(m.url, m.workerToken, 'w1', spoolDir);
    const done = await untilJobState(client, job.id, ['completed', 'failed'], 60_000);
    expect(done.state).toBe('completed');
    const [task] = await client.listTasks(job.id);
    // Completed by the first run's attempt, not run again.
    expect(task).toMatchObject({ state: 'completed', worker: 'w1', attempt: 1 });
    expect(await fullLog(client, job.id, 1)).toContain(expectedLog(20));
    expect(await completedEvents(client, job.id)).toBe(1);
    await until('the spool to be empty', () => spooledResults(spoolDir).length === 0);
  }, 120_000);

  it('has a late result refused and recorded, not applied, when the task went to another worker', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-offline-'));
    // Short leases: a silent worker loses its task within seconds.
    const m = await manager(dir, 0, { ...FAST, leaseTtlMs: 1_500, stallAfterMs: 1_500 });
    const client = m.client;
    const proxy = await cuttableProxy(portOf(m.url));
    cleanups.push(() => proxy.close());

    const slowLog: string[] = [];
    const slowSpool = join(dir, 'spool-slow');
    inProcessWorker(proxy.url, m.workerToken, 'slow', slowSpool, slowLog);
    const marker = join(dir, 'slow-finished');
    // The slow worker takes 4 s; any other worker renders at once.
    const script = [
      'const fs = require("fs");',
      'if (process.env.DROVER_WORKER === "slow") {',
      '  setTimeout(() => { console.log("rendered by slow"); fs.writeFileSync(process.argv[1], ""); }, 4000);',
      '} else console.log("rendered by " + process.env.DROVER_WORKER);',
    ].join('\n');
    const job = await client.submitJob({
      name: 'reassigned',
      plugin: 'CommandLine',
      pluginInfo: { executable: node, arguments: ['-e', script, marker] },
      frames: '1',
    });
    await until(
      'the task to render on the slow worker',
      async () => (await client.listTasks(job.id))[0]?.worker === 'slow',
    );
    proxy.cut(); // the slow worker can no longer reach the manager
    inProcessWorker(m.url, m.workerToken, 'fast', join(dir, 'spool-fast'));
    const done = await untilJobState(client, job.id, ['completed', 'failed'], 60_000);
    expect(done.state).toBe('completed');
    await until('the slow worker to finish anyway', () => existsSync(marker), 30_000);
    await until('its result in the spool', () => spooledResults(slowSpool).length === 1);

    proxy.restore();
    await until('the slow worker to deliver and be refused', () =>
      slowLog.some((l) => l.includes('report refused')),
    );
    const refused = JSON.parse(slowLog.find((l) => l.includes('report refused'))!) as Record<
      string,
      unknown
    >;
    expect(refused).toMatchObject({ job: job.id, task: 0, attempt: 1, outcome: 'completed' });
    await until(
      'the refused result to leave the spool',
      () => spooledResults(slowSpool).length === 0,
    );

    // Not applied: the fast worker's completion stands, once.
    const [task] = await client.listTasks(job.id);
    expect(task).toMatchObject({ state: 'completed', worker: 'fast', attempt: 2 });
    expect(await completedEvents(client, job.id)).toBe(1);
    expect((await client.getJob(job.id)).errorCount).toBe(0);
    expect(await fullLog(client, job.id, 2)).toContain('rendered by fast');
    // (The command line in the log's first line names it too: look for the output line.)
    expect(await fullLog(client, job.id, 1)).not.toMatch(/^rendered by slow$/m);
  }, 120_000);
});

/** A TCP proxy to the manager that can drop every connection and refuse new ones. */
async function cuttableProxy(
  target: number,
): Promise<{ url: string; cut(): void; restore(): void; close(): Promise<void> }> {
  let open = true;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (!open) return client.destroy();
    const upstream = new Socket();
    upstream.connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      open = false;
      // RST, not FIN: like a cable pulled, nothing half-open is left behind.
      for (const s of sockets) s.resetAndDestroy();
    },
    restore() {
      open = true;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.resetAndDestroy();
        server.close(() => r());
      }),
  };
}
