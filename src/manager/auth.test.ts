import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Store } from '../store/contract.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { buildApp } from './app.js';
import { Authenticator, ensureAdminToken } from './auth.js';
import { defaultManagerSettings } from './config.js';
import { Farm } from './farm.js';
import { startManager } from './server.js';

const quiet = pino({ level: 'silent' });
const job = { plugin: 'CommandLine', pluginInfo: { executable: '/bin/true' }, frames: '1' };

describe('tokens and roles over HTTP', () => {
  let app: FastifyInstance;
  let store: Store;
  let auth: Authenticator;
  let dir: string;
  const tokens: Record<string, string> = {};

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'drover-auth-'));
    store = await openSqliteStore(join(dir, 'drover.db'));
    auth = new Authenticator(store);
    tokens.admin = (await ensureAdminToken(store, auth, dir))!;
    for (const [name, role] of [
      ['alice', 'user'],
      ['bob', 'user'],
      ['viewer', 'read-only'],
      ['node', 'worker'],
    ] as const) {
      tokens[name] = (await auth.createToken(name, role)).secret;
    }
    app = buildApp(new Farm(store, defaultManagerSettings, quiet), quiet, { auth });
    await app.ready();
  });
  afterEach(async () => {
    await app.close();
    await store.close();
  });

  const call = (
    who: string | undefined,
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    payload?: object,
  ) =>
    app.inject({
      method,
      url: `/api/v1${url}`,
      ...(payload ? { payload } : {}),
      ...(who ? { headers: { authorization: `Bearer ${tokens[who] ?? who}` } } : {}),
    });

  it('writes the first admin token to a file only its owner can read', () => {
    expect(statSync(join(dir, 'admin-token')).mode & 0o777).toBe(0o600);
  });

  it('answers 401 without a valid token, and leaves the health check open', async () => {
    expect((await call(undefined, 'GET', '/health')).statusCode).toBe(200);
    const none = await call(undefined, 'GET', '/jobs');
    expect(none.statusCode).toBe(401);
    expect(none.json().error.code).toBe('unauthorized');
    expect((await call('drv_forged', 'GET', '/jobs')).statusCode).toBe(401);
  });

  it('lets a read-only token read and nothing else', async () => {
    expect((await call('viewer', 'GET', '/jobs')).statusCode).toBe(200);
    const post = await call('viewer', 'POST', '/jobs', job);
    expect(post.statusCode).toBe(403);
    expect(post.json().error.code).toBe('forbidden');
  });

  it('keeps worker tokens to the worker protocol', async () => {
    expect((await call('node', 'GET', '/jobs')).statusCode).toBe(403);
    const reg = await call('node', 'POST', '/workers/register', {
      name: 'w1',
      capabilities: { cpus: 1, memoryMb: 1, os: 'linux' },
    });
    expect(reg.statusCode).toBe(200);
  });

  it('keeps a worker token to the workers it names', async () => {
    const created = await call('admin', 'POST', '/tokens', {
      name: 'rack-a',
      role: 'worker',
      workers: 'render-a*',
    });
    expect(created.statusCode).toBe(201);
    expect(created.json().info.workers).toBe('render-a*');
    tokens.rackA = created.json().token;
    const register = (name: string, who = 'rackA') =>
      call(who, 'POST', '/workers/register', {
        name,
        capabilities: { cpus: 1, memoryMb: 1, os: 'linux' },
      });
    expect((await register('render-a01')).statusCode).toBe(200);
    const other = await register('render-b01');
    expect(other.statusCode).toBe(403);
    expect(other.json().error.message).toContain('not as render-b01');
    expect(await store.fetchWorker('render-b01')).toBeUndefined();
    // The shared token (any worker) registers render-b01; the rack token still may not act as it.
    expect((await register('render-b01', 'node')).statusCode).toBe(200);
    for (const path of ['work', 'heartbeat', 'stopped']) {
      const r = await call('rackA', 'POST', `/workers/render-b01/${path}`, {});
      expect(r.statusCode, path).toBe(403);
    }
    expect(
      (await call('rackA', 'POST', '/workers/render-a01/heartbeat', { tasks: [] })).statusCode,
    ).toBe(200);
    expect((await store.fetchWorker('render-b01'))!.state).not.toBe('offline');
    // Only worker tokens name workers, and the pattern is checked.
    const user = await call('admin', 'POST', '/tokens', { name: 'u', role: 'user', workers: '*' });
    expect(user.statusCode).toBe(400);
    expect(user.json().error.field).toBe('workers');
    const spaced = await call('admin', 'POST', '/tokens', {
      name: 'w',
      role: 'worker',
      workers: 'a b',
    });
    expect(spaced.statusCode).toBe(400);
    expect(spaced.json().error.field).toBe('workers');
  });

  it('lets users act on their own jobs only, and submit only as themselves', async () => {
    const mine = (await call('alice', 'POST', '/jobs', { ...job, user: 'bob' })).json().job;
    expect(mine.user).toBe('alice');
    expect(
      (await call('alice', 'POST', `/jobs/${mine.id}/actions`, { action: 'suspend' })).statusCode,
    ).toBe(200);
    const theirs = await call('bob', 'POST', `/jobs/${mine.id}/actions`, { action: 'resume' });
    expect(theirs.statusCode).toBe(403);
    expect(theirs.json().error.message).toContain('belongs to alice');
    expect((await call('bob', 'PATCH', `/jobs/${mine.id}`, { priority: 99 })).statusCode).toBe(403);
    expect(
      (await call('admin', 'POST', `/jobs/${mine.id}/actions`, { action: 'resume' })).statusCode,
    ).toBe(200);
    expect((await call('alice', 'PATCH', '/workers/w1', { enabled: false })).statusCode).toBe(403);
    expect((await call('alice', 'POST', '/tokens', { name: 'x', role: 'admin' })).statusCode).toBe(
      403,
    );
  });

  it('creates, lists and revokes tokens as admin; a revoked token stops working', async () => {
    const created = await call('admin', 'POST', '/tokens', { name: 'carol', role: 'user' });
    expect(created.statusCode).toBe(201);
    const { token, info } = created.json();
    tokens.carol = token;
    expect((await call('carol', 'GET', '/jobs')).statusCode).toBe(200);
    const list = (await call('admin', 'GET', '/tokens')).json<{ tokens: Array<{ name: string }> }>()
      .tokens;
    expect(list.map((t) => t.name)).toContain('carol');
    expect(JSON.stringify(list)).not.toContain(token);
    expect((await call('admin', 'DELETE', `/tokens/${info.id}`)).statusCode).toBe(200);
    expect((await call('carol', 'GET', '/jobs')).statusCode).toBe(401);
    const bad = await call('admin', 'POST', '/tokens', { name: 'x', role: 'root' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.field).toBe('role');
  });

  it('keeps live token names unique: jobs belong to a name, so a second "alice" is refused', async () => {
    const twin = await call('admin', 'POST', '/tokens', { name: 'alice', role: 'user' });
    expect(twin.statusCode).toBe(409);
    expect(twin.json().error.message).toContain('alice');
    const alice = (await auth.list()).find((t) => t.name === 'alice' && t.revokedAt === null)!;
    await auth.revoke(alice.id);
    // A revoked name may be given anew (the user's replacement token).
    expect(
      (await call('admin', 'POST', '/tokens', { name: 'alice', role: 'user' })).statusCode,
    ).toBe(201);
  });

  it('lists tokens to admins only', async () => {
    for (const who of ['alice', 'viewer', 'node']) {
      expect((await call(who, 'GET', '/tokens')).statusCode, who).toBe(403);
    }
    expect((await call('admin', 'GET', '/tokens')).statusCode).toBe(200);
  });
});

describe('TLS', () => {
  it('serves HTTPS with --tls-cert/--tls-key, and the CLI reaches it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-tls-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const { readFileSync } = await import('node:fs');
    const manager = await startManager({
      dataDir: dir,
      port: 0,
      logger: quiet,
      tls: { cert: readFileSync(cert), key: readFileSync(key) },
    });
    try {
      expect(manager.url).toMatch(/^https:\/\//);
      // Asynchronously: the manager answers from this very process.
      const { stdout: out } = await promisify(execFile)(
        process.execPath,
        [
          join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js'),
          'jobs',
          '--json',
          '--url',
          manager.url,
          '--token',
          manager.adminToken!,
        ],
        {
          env: { ...process.env, NODE_EXTRA_CA_CERTS: cert },
        },
      );
      expect(JSON.parse(out)).toEqual([]);
    } finally {
      await manager.close();
    }
  });
});
