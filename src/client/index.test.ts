import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DroverError } from '../core/errors.js';
import { DroverClient } from './index.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
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

/** A tiny manager stand-in on 127.0.0.1:0 that records requests and answers via `handle`. */
async function serve(
  handle: (req: Seen, res: ServerResponse) => void,
): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(s);
      handle(s, res);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** An address nothing listens on: a server bound then closed. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return `http://127.0.0.1:${port}`;
}

async function caught(p: Promise<unknown>): Promise<DroverError> {
  try {
    await p;
  } catch (error) {
    expect(error).toBeInstanceOf(DroverError);
    return error as DroverError;
  }
  throw new Error('expected the call to throw');
}

describe('DroverClient', () => {
  it('sends the token, encodes path segments and query, unwraps replies', async () => {
    const m = await serve((req, res) => json(res, 200, { jobs: [{ id: 'j1' }], job: { id: 'x' } }));
    const client = new DroverClient({ url: m.url + '/', token: 's3cret' });

    const jobs = await client.listJobs({ state: ['queued', 'rendering'], limit: 5, all: true });
    expect(jobs).toEqual([{ id: 'j1' }]);
    await client.getJob('a/b c');
    await client.jobAction('j1', 'suspend');

    expect(m.seen[0]?.url).toBe('/api/v1/jobs?state=queued%2Crendering&limit=5&all=true');
    expect(m.seen[0]?.headers.authorization).toBe('Bearer s3cret');
    expect(m.seen[1]?.url).toBe('/api/v1/jobs/a%2Fb%20c');
    expect(m.seen[2]?.method).toBe('POST');
    expect(m.seen[2]?.url).toBe('/api/v1/jobs/j1/actions');
    expect(JSON.parse(m.seen[2]?.body ?? '')).toEqual({ action: 'suspend' });
  });

  it('turns an error reply into a DroverError with the code, message and field', async () => {
    const m = await serve((_req, res) =>
      json(res, 400, {
        error: { code: 'invalid_input', message: 'chunkSize: too small', field: 'chunkSize' },
      }),
    );
    const client = new DroverClient({ url: m.url });
    const error = await caught(client.submitJob({ plugin: 'CommandLine', chunkSize: 0 }));
    expect(error.code).toBe('invalid_input');
    expect(error.field).toBe('chunkSize');
    expect(error.message).toBe('chunkSize: too small');
  });

  it('maps a reply without an error body by its status', async () => {
    const m = await serve((_req, res) => {
      res.writeHead(404);
      res.end('nope');
    });
    const error = await caught(new DroverClient({ url: m.url }).getWorker('w1'));
    expect(error.code).toBe('not_found');
  });

  it('reports an unreachable manager as unavailable', async () => {
    const url = await deadUrl();
    const error = await caught(new DroverClient({ url }).health());
    expect(error.code).toBe('unavailable');
    expect(error.message).toContain(`cannot reach the manager at ${url}`);
  });

  it('times out a request that gets no reply', async () => {
    const m = await serve(() => undefined);
    const error = await caught(new DroverClient({ url: m.url, timeoutMs: 200 }).health());
    expect(error.code).toBe('unavailable');
    expect(error.message).toContain('no reply within 200 ms');
  });

  it('fails over to the next address and sticks to it', async () => {
    const dead = await deadUrl();
    const m = await serve((_req, res) => json(res, 200, { ok: true, version: '1', store: 'x' }));
    const client = new DroverClient({ url: [dead, m.url] });
    expect((await client.health()).ok).toBe(true);
    expect(client.url).toBe(m.url);
    await client.listWorkers().catch(() => undefined);
    expect(m.seen).toHaveLength(2);
  });

  it('retries a submission that got no reply on the next manager only with an idempotency key', async () => {
    // The first manager takes the request and never answers (it may have applied it).
    const silent = await serve(() => undefined);
    const m = await serve((req, res) => json(res, 201, { job: { id: 'j1' } }));
    const client = new DroverClient({ url: [silent.url, m.url], timeoutMs: 200 });
    const job = { plugin: 'CommandLine' };
    const error = await caught(client.submitJob(job));
    expect(error.code).toBe('unavailable');
    expect(m.seen).toHaveLength(0);
    const again = new DroverClient({ url: [silent.url, m.url], timeoutMs: 200 });
    expect((await again.submitJob(job, { idempotencyKey: 'k-1' })).id).toBe('j1');
    expect(m.seen[0]?.headers['idempotency-key']).toBe('k-1');
    expect(silent.seen.at(-1)?.headers['idempotency-key']).toBe('k-1');
  });

  it('gives a long-poll more time than the plain timeout', async () => {
    const m = await serve((_req, res) => {
      setTimeout(() => json(res, 200, { reportError: null, task: null }), 400);
    });
    const client = new DroverClient({ url: m.url, timeoutMs: 200 });
    const reply = await client.work('w 1', { waitMs: 500 });
    expect(reply.task).toBeNull();
    expect(m.seen[0]?.url).toBe('/api/v1/workers/w%201/work');
  });
});
