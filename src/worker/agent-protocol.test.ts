import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TaskAssignment } from '../core/types.js';
import type { AppPlugin } from './apps/types.js';
import { procState } from './process-tree.js';

// The agent's protocol against a scripted stand-in for the manager (the real manager's
// end-to-end tests live with the manager). Processes are real.
vi.mock('./apps/index.js', () => ({
  findApp: () => {
    throw new Error('tests pass findApp');
  },
}));
const { startWorker } = await import('./agent.js');

type Body = Record<string, unknown>;
interface Call {
  route: string;
  body: Body;
}

interface FakeManager {
  url: string;
  calls: Call[];
  /** Tasks handed out, one per work request that claims, in order. */
  queue: TaskAssignment[];
  revoke: string[];
  /** Routes that answer 404 not_found once. */
  forget: Set<string>;
  /** What heartbeats answer for `enabled`. */
  enabled: boolean;
  /** Leases whose log requests answer 409 lease_lost. */
  lost: Set<string>;
  waitFor(pred: (calls: Call[]) => boolean, ms?: number): Promise<void>;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((s) => {
      const closed = new Promise((r) => s.close(r));
      s.closeAllConnections();
      return closed;
    }),
  );
});

async function fakeManager(): Promise<FakeManager> {
  const m: Omit<FakeManager, 'url' | 'waitFor'> = {
    calls: [],
    queue: [],
    revoke: [],
    forget: new Set(),
    enabled: true,
    lost: new Set(),
  };
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      const route = (req.url ?? '').replace(/^\/api\/v1\/workers\/(?:w1\/)?/, '');
      const body = (text ? JSON.parse(text) : {}) as Body;
      m.calls.push({ route, body });
      const send = (status: number, reply: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(reply));
      };
      if (m.forget.delete(route)) {
        send(404, { error: { code: 'not_found', message: 'worker w1 not found' } });
        return;
      }
      switch (route) {
        case 'register':
          send(200, { worker: { enabled: true }, heartbeatIntervalMs: 50, leaseTtlMs: 1000 });
          return;
        case 'heartbeat':
          send(200, { revoked: m.revoke.splice(0), enabled: m.enabled, heartbeatIntervalMs: 50 });
          return;
        case 'logs':
          if (m.lost.has(body.lease as string)) {
            send(409, { error: { code: 'lease_lost', message: 'lease is no longer current' } });
          } else {
            send(200, { ok: true });
          }
          return;
        case 'work': {
          const task = body.claim === false ? undefined : m.queue.shift();
          if (task) send(200, { reportError: null, task });
          else setTimeout(() => send(200, { reportError: null, task: null }), 100);
          return;
        }
        default:
          send(200, { ok: true });
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(m, {
    url,
    async waitFor(pred: (calls: Call[]) => boolean, ms = 10_000) {
      const end = Date.now() + ms;
      while (!pred(m.calls)) {
        if (Date.now() > end) throw new Error(`timed out; calls: ${JSON.stringify(m.calls)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  });
}

function task(lease: string, script: string, timeout = 0): TaskAssignment {
  return {
    lease,
    leaseExpiresAt: Date.now() + 60_000,
    jobId: 'job1',
    jobName: 'Job 1',
    taskIndex: 0,
    attempt: 1,
    frames: [1, 2],
    plugin: 'node',
    pluginInfo: { script },
    environment: { FROM_JOB: 'yes' },
    outputDirectories: [],
    outputFilenames: [],
    taskTimeoutSeconds: timeout,
  };
}

const nodeApp: AppPlugin = {
  name: 'node',
  processes: (t) => [{ argv: [process.execPath, '-e', String(t.pluginInfo.script)] }],
  createParser: () => ({
    line: (text) => {
      const m = /^PROGRESS (\d+)/.exec(text);
      if (m) return { progress: Number(m[1]), status: text };
      if (text.startsWith('FATAL')) return { error: text };
      return undefined;
    },
  }),
};

function start(url: string, extra: Partial<Parameters<typeof startWorker>[0]> = {}) {
  return startWorker({
    manager: url,
    name: 'w1',
    findApp: () => nodeApp,
    claimWaitMs: 100,
    killGraceMs: 500,
    retryBaseMs: 20,
    retryMaxMs: 100,
    logFlushMs: 20,
    // Each worker its own spool: a report left by one test must not reach the next one.
    spoolDir: mkdtempSync(join(tmpdir(), 'drover-agent-spool-')),
    logger: pino({ level: process.env.AGENT_LOG ?? 'silent' }),
    ...extra,
  });
}

const reports = (calls: Call[]) =>
  calls.flatMap((c) =>
    c.route === 'work' && c.body.report
      ? [c.body.report as Body]
      : c.route === 'report'
        ? [c.body]
        : [],
  );
const logText = (calls: Call[]) =>
  calls
    .filter((c) => c.route === 'logs')
    .flatMap((c) => c.body.chunks as { text: string }[])
    .map((c) => c.text)
    .join('');

describe('worker agent', () => {
  it('runs a task, streams its log and progress, reports it with the next claim', async () => {
    const m = await fakeManager();
    m.queue.push(
      task(
        'L1',
        `console.log('PROGRESS 50'); console.log(process.env.FROM_JOB, process.env.DROVER_FRAMES)`,
      ),
    );
    const w = start(m.url);
    await m.waitFor((c) => reports(c).length > 0);
    expect(reports(m.calls)[0]).toEqual({
      lease: 'L1',
      outcome: 'completed',
      exitCode: 0,
      message: '',
    });
    const text = logText(m.calls);
    expect(text).toContain('yes 1,2\n');
    expect(text).toContain('process started: ["');
    expect(text).toContain('process exited with code 0');
    expect(m.calls.some((c) => c.route === 'logs' && c.body.progress === 50)).toBe(true);
    w.stop();
    await w.done;
    expect(m.calls.at(-1)?.route).toBe('stopped');
  });

  it('fails on a non-zero exit or a parser error', async () => {
    const m = await fakeManager();
    m.queue.push(task('L1', 'process.exit(3)'), task('L2', `console.log('FATAL no licence')`));
    const w = start(m.url);
    await m.waitFor((c) => reports(c).length >= 2);
    const [first, second] = reports(m.calls);
    expect(first).toMatchObject({ lease: 'L1', outcome: 'failed', exitCode: 3 });
    expect(first?.message).toContain('exited with code 3');
    expect(second).toMatchObject({ lease: 'L2', outcome: 'failed', message: 'FATAL no licence' });
    w.stop();
    await w.done;
  });

  it('kills a revoked task and does not report it', async () => {
    const m = await fakeManager();
    m.queue.push(task('L1', `console.log(process.pid); setInterval(() => {}, 1000)`));
    const w = start(m.url);
    await m.waitFor((c) => /^\d+\n/m.test(logText(c)));
    const pid = Number(/^(\d+)\n/m.exec(logText(m.calls))?.[1]);
    m.revoke.push('L1');
    await m.waitFor(() => procState(pid) === undefined || procState(pid)?.state === 'Z');
    w.stop();
    await w.done;
    expect(reports(m.calls)).toEqual([]);
  });

  it('kills a task whose log request answers lease_lost', async () => {
    const m = await fakeManager();
    m.lost.add('L1');
    m.queue.push(task('L1', `setInterval(() => {}, 1000)`), task('L2', '0'));
    const w = start(m.url);
    await m.waitFor((c) => reports(c).length > 0);
    expect(reports(m.calls)).toEqual([
      { lease: 'L2', outcome: 'completed', exitCode: 0, message: '' },
    ]);
    w.stop();
    await w.done;
  });

  it('stops claiming while disabled and resumes when enabled', async () => {
    const m = await fakeManager();
    m.enabled = false;
    const w = start(m.url);
    await m.waitFor((c) => c.some((x) => x.route === 'heartbeat'));
    await new Promise((r) => setTimeout(r, 300));
    const claims = m.calls.filter((c) => c.route === 'work').length;
    await new Promise((r) => setTimeout(r, 300));
    expect(m.calls.filter((c) => c.route === 'work').length).toBe(claims);
    m.enabled = true;
    m.queue.push(task('L1', '0'));
    await m.waitFor((c) => reports(c).length > 0);
    w.stop();
    await w.done;
  });

  it('times a task out', async () => {
    const m = await fakeManager();
    m.queue.push(task('L1', `setInterval(() => {}, 1000)`, 1));
    const w = start(m.url);
    await m.waitFor((c) => reports(c).length > 0);
    expect(reports(m.calls)[0]).toMatchObject({
      outcome: 'failed',
      message: 'task timed out after 1 s',
    });
    w.stop();
    await w.done;
  });

  it('hands a running task back when the drain time runs out', async () => {
    const m = await fakeManager();
    m.queue.push(task('L1', `process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)`));
    const w = start(m.url, { drainTimeoutMs: 200 });
    await m.waitFor((c) => logText(c).includes('started'));
    w.stop();
    await w.done;
    expect(reports(m.calls)).toEqual([
      { lease: 'L1', outcome: 'handed-back', exitCode: null, message: 'the worker is stopping' },
    ]);
    expect(m.calls.at(-1)?.route).toBe('stopped');
  });

  it('registers again when the manager has forgotten the worker', async () => {
    const m = await fakeManager();
    const w = start(m.url);
    await m.waitFor((c) => c.some((x) => x.route === 'work'));
    m.forget.add('work');
    await m.waitFor((c) => c.filter((x) => x.route === 'register').length >= 2);
    w.stop();
    await w.done;
  });

  it('keeps retrying registration until the manager is reachable', async () => {
    const m = await fakeManager();
    const server = servers.pop()!;
    const port = (server.address() as AddressInfo).port;
    await new Promise((r) => server.close(r));
    const w = start(m.url);
    await new Promise((r) => setTimeout(r, 300));
    expect(m.calls).toEqual([]);
    servers.push(server);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    await m.waitFor((c) => c.some((x) => x.route === 'work'));
    w.stop();
    await w.done;
  });
});
