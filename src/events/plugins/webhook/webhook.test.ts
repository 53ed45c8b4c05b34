import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../../core/plugin-config.js';
import { prepareSubmission } from '../../../core/submission.js';
import type { FarmEvent } from '../../../core/types.js';
import type { Store } from '../../../store/contract.js';
import { openSqliteStore } from '../../../store/sqlite/index.js';
import { PluginHost } from '../../host.js';
import {
  DOWN_AFTER_FAILURES,
  type WebhookJobData,
  deliver,
  matchesEventType,
  safeUrl,
  webhookBody,
  webhookPlugin,
  webhookSettings,
  withoutSecrets,
} from './index.js';

const quiet = pino({ level: 'silent' });

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

/** A real HTTP server on a free local port; `answer` decides each reply (by request count). */
async function receiver(
  answer: (n: number, req: IncomingMessage, res: ServerResponse) => void = (_n, _req, res) => {
    res.writeHead(204).end();
  },
) {
  const received: Received[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      answer(received.length, req, res);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: new URL(`http://127.0.0.1:${port}/hook`),
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const servers: Array<{ close: () => Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(answer?: Parameters<typeof receiver>[0]) {
  const s = await receiver(answer);
  servers.push(s);
  return s;
}

function event(over: Partial<FarmEvent> = {}): FarmEvent {
  return {
    seq: 42,
    at: Date.UTC(2026, 11, 1, 17, 0, 0),
    type: 'version.ready',
    jobId: 'job1',
    taskIndex: null,
    worker: null,
    data: { product: 'demo/seq010/sh010/beauty', version: 3 },
    ...over,
  };
}

function settings(over: Record<string, unknown> = {}) {
  return webhookSettings({ ...defaultConfig(webhookPlugin.config), ...over } as never).settings;
}

describe('webhook configuration and body', () => {
  it('matches version.* and exact types by default, not the rest', () => {
    const { events } = settings();
    expect(matchesEventType('version.approved', events)).toBe(true);
    expect(matchesEventType('job.finished', events)).toBe(true);
    expect(matchesEventType('job.failed', events)).toBe(true);
    expect(matchesEventType('job.submitted', events)).toBe(false);
    expect(matchesEventType('versions.x', events)).toBe(false);
    expect(matchesEventType('task.started', ['*'])).toBe(true);
  });

  it('keeps http(s) URLs and reports the others', () => {
    const { settings: s, bad } = webhookSettings({
      urls: 'https://tracker.example/hook\nfile:///etc/passwd, ftp://x/y  http://127.0.0.1:9/a',
    });
    expect(s.urls.map((u) => u.href)).toEqual([
      'https://tracker.example/hook',
      'http://127.0.0.1:9/a',
    ]);
    expect(bad).toEqual(['file:///etc/passwd', 'ftp://x/y']);
    expect(
      safeUrl(new URL('https://user:pw@hooks.example:8443/services/T0/B0/key?token=abc')),
    ).toBe('https://hooks.example:8443');
  });

  it('sends type, time and data, never secret-looking keys', () => {
    const body = JSON.parse(
      webhookBody(
        event({
          data: {
            product: 'p',
            environment: { AWS_SECRET_ACCESS_KEY: 'x' },
            nested: [{ apiKey: 'k', ok: 1, authToken: 't' }],
            password: 'pw',
          },
        }),
        65536,
      ),
    ) as Record<string, unknown>;
    expect(body).toEqual({
      seq: 42,
      type: 'version.ready',
      at: '2026-12-01T17:00:00.000Z',
      jobId: 'job1',
      taskIndex: null,
      worker: null,
      data: { product: 'p', nested: [{ ok: 1 }] },
    });
    expect(withoutSecrets({ a: { b: { secret: 1, c: 2 } } })).toEqual({ a: { b: { c: 2 } } });
  });

  it('bounds the body: a large one goes out with its data left out', () => {
    const text = webhookBody(event({ data: { big: 'x'.repeat(5000) } }), 1024);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(1024);
    expect(JSON.parse(text)).toMatchObject({ type: 'version.ready', data: { truncated: true } });
  });
});

describe('webhook delivery to a real HTTP server', () => {
  const noWait = () => Promise.resolve();

  it('POSTs JSON with the event headers and a verifiable signature', async () => {
    const s = await server();
    const st = { ...settings(), secret: 'shh' };
    const body = webhookBody(event(), st.maxBodyBytes);
    const outcome = await deliver(s.url, event(), body, st);
    expect(outcome).toEqual({ url: s.url.origin, ok: true, attempts: 1, status: 204 });
    expect(s.received).toHaveLength(1);
    const got = s.received[0]!;
    expect(got.body).toBe(body);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['x-drover-event']).toBe('version.ready');
    expect(got.headers['x-drover-delivery']).toBe('42');
    const expected = `sha256=${createHmac('sha256', 'shh').update(got.body).digest('hex')}`;
    expect(got.headers['x-drover-signature']).toBe(expected);
    expect(got.body).not.toContain('shh');
  });

  it('retries a server that fails first, with doubling back-off, until it answers', async () => {
    const s = await server((n, _req, res) => res.writeHead(n < 3 ? 503 : 200).end('ok'));
    const waits: number[] = [];
    const outcome = await deliver(
      s.url,
      event(),
      '{}',
      { ...settings(), retryDelayMs: 100 },
      {
        sleep: (ms) => {
          waits.push(ms);
          return Promise.resolve();
        },
      },
    );
    expect(outcome).toMatchObject({ ok: true, attempts: 3, status: 200 });
    expect(s.received).toHaveLength(3);
    expect(waits).toEqual([100, 200]);
  });

  it('gives up after the retries and does not retry a 4xx answer', async () => {
    const failing = await server((_n, _req, res) => res.writeHead(500).end());
    const outcome = await deliver(
      failing.url,
      event(),
      '{}',
      { ...settings(), retries: 2 },
      { sleep: noWait },
    );
    expect(outcome).toMatchObject({ ok: false, attempts: 3, status: 500, error: 'HTTP 500' });
    expect(failing.received).toHaveLength(3);

    const refusing = await server((_n, _req, res) => res.writeHead(400).end());
    const once = await deliver(refusing.url, event(), '{}', settings(), { sleep: noWait });
    expect(once).toMatchObject({ ok: false, attempts: 1, status: 400 });
    expect(refusing.received).toHaveLength(1);
  });

  it('times out on a server that never answers, then retries', async () => {
    const hanging = await server(() => undefined); // reads the request, never replies
    const started = Date.now();
    const outcome = await deliver(
      hanging.url,
      event(),
      '{}',
      { ...settings(), timeoutMs: 300, retries: 1 },
      {
        sleep: noWait,
      },
    );
    expect(outcome).toMatchObject({ ok: false, attempts: 2, error: 'no answer within 0.3 s' });
    expect(hanging.received).toHaveLength(2);
    // Two attempts of 0.3 s each, not the default 5 s timeout.
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('reports a refused connection as a failure without throwing', async () => {
    const s = await receiver();
    await s.close(); // nothing listens on that port any more
    const outcome = await deliver(s.url, event(), '{}', { ...settings(), retries: 0 });
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/ECONNREFUSED|fetch failed/);
  });

  it('does not follow redirects', async () => {
    const target = await server();
    const redirecting = await server((_n, _req, res) =>
      res.writeHead(307, { location: target.url.href }).end(),
    );
    const outcome = await deliver(redirecting.url, event(), '{}', settings(), { sleep: noWait });
    expect(outcome).toMatchObject({ ok: false, status: 307 });
    expect(target.received).toHaveLength(0);
  });
});

describe('webhook plugin in the event plugin host', () => {
  let dir: string;
  let store: Store;
  let host: PluginHost | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'drover-webhook-'));
    store = await openSqliteStore(join(dir, 'drover.db'));
  });
  afterEach(async () => {
    await host?.stop();
    host = undefined;
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startHost() {
    host = new PluginHost({ store, plugins: [webhookPlugin], log: quiet, pollMs: 20 });
    await host.start();
    return host;
  }

  async function submit(name: string, eventOptIns: string[] = []) {
    const { submission, frames } = prepareSubmission({
      name,
      plugin: 'CommandLine',
      pluginInfo: { executable: '/bin/true' },
      eventOptIns,
    });
    const job = await store.createJob(submission, frames, {
      holdFor: await host!.holdFor(submission),
    });
    host!.wake();
    return job;
  }

  async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('posts the configured event types of every job when global, and nothing when disabled', async () => {
    const s = await server();
    const h = await startHost();
    await submit('before'); // disabled by default: not sent once the host has passed it
    const seen = await store.latestEventSeq();
    await until(async () => ((await store.fetchCursor('plugin:webhook')) ?? 0) >= seen);
    await h.configure('webhook', {
      state: 'global',
      config: { urls: s.url.href, events: 'job.submitted' },
    });
    const job = await submit('shot010');
    await until(() => s.received.length >= 1);
    const body = JSON.parse(s.received[0]!.body) as Record<string, unknown>;
    expect(body).toMatchObject({ type: 'job.submitted', jobId: job.id, data: { name: 'shot010' } });
    expect(s.received).toHaveLength(1);
    // The secret never shows in the plugin's view.
    await h.configure('webhook', { config: { secret: 'abc' } });
    expect(h.show('webhook').config.secret).toBe('********');
    expect(h.show('webhook').config.urls).toBe('********');
  });

  it('posts version events with the default event types', async () => {
    const s = await server();
    const h = await startHost();
    await h.configure('webhook', { state: 'global', config: { urls: s.url.href } });
    await submit('not sent'); // job.submitted is not among the defaults
    const version = await store.versions.create({
      product: 'demo/seq010/sh010/beauty',
      submittedBy: 'ana',
      comment: 'first light',
      folderOf: (n) => join(dir, 'publish', `v${String(n).padStart(3, '0')}`),
    });
    await store.versions.update(version.id, { status: 'pending review' }, 'version.ready');
    await until(() => s.received.length >= 2);
    const bodies = s.received.map((r) => JSON.parse(r.body) as { type: string; data: object });
    expect(bodies.map((b) => b.type)).toEqual(['version.created', 'version.ready']);
    expect(s.received.map((r) => r.headers['x-drover-event'])).toEqual([
      'version.created',
      'version.ready',
    ]);
    expect(JSON.stringify(bodies[0]!.data)).toContain('demo/seq010/sh010/beauty');
  });

  it('posts only opted-in jobs when opt-in', async () => {
    const s = await server();
    const h = await startHost();
    await h.configure('webhook', {
      state: 'opt-in',
      config: { urls: s.url.href, events: 'job.*' },
    });
    await submit('quiet');
    const loud = await submit('loud', ['webhook']);
    await until(() => s.received.some((r) => r.body.includes(loud.id)));
    expect(s.received.every((r) => r.body.includes(loud.id))).toBe(true);
  });

  it('records failed deliveries on the job and keeps consuming events', async () => {
    const failing = await server((_n, _req, res) => res.writeHead(500).end());
    const ok = await server();
    const h = await startHost();
    await h.configure('webhook', {
      state: 'global',
      config: {
        urls: `${failing.url.href} ${ok.url.href}`,
        events: 'job.submitted',
        retries: 1,
        retryDelayMs: 0,
      },
    });
    const first = await submit('first');
    await until(async () => {
      const j = await store.fetchJob(first.id);
      return (j?.pluginData.webhook as WebhookJobData | undefined)?.failures.length === 1;
    });
    const data = (await store.fetchJob(first.id))!.pluginData.webhook as WebhookJobData;
    expect(data.failures[0]).toMatchObject({
      url: failing.url.origin,
      ok: false,
      attempts: 2,
      status: 500,
      type: 'job.submitted',
    });
    // The healthy URL got it, and later events still flow.
    const second = await submit('second');
    await until(() => ok.received.some((r) => r.body.includes(second.id)));
    expect(ok.received.filter((r) => r.body.includes(first.id))).toHaveLength(1);
  });

  it(`gives a URL that failed ${DOWN_AFTER_FAILURES} events in a row one attempt per event`, async () => {
    const failing = await server((_n, _req, res) => res.writeHead(503).end());
    const h = await startHost();
    await h.configure('webhook', {
      state: 'global',
      config: { urls: failing.url.href, events: 'job.submitted', retries: 2, retryDelayMs: 0 },
    });
    const jobs = [];
    for (let i = 0; i < DOWN_AFTER_FAILURES + 1; i++) jobs.push(await submit(`j${i}`));
    const last = jobs.at(-1)!;
    await until(() => failing.received.some((r) => r.body.includes(last.id)));
    await until(async () => {
      const j = await store.fetchJob(last.id);
      return j?.pluginData.webhook !== undefined;
    });
    const per = (id: string) => failing.received.filter((r) => r.body.includes(id)).length;
    expect(jobs.slice(0, DOWN_AFTER_FAILURES).map((j) => per(j.id))).toEqual(
      Array<number>(DOWN_AFTER_FAILURES).fill(3),
    );
    expect(per(last.id)).toBe(1);
  });
});
