import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/manager/app.js';
import { Authenticator, ensureAdminToken } from '../../src/manager/auth.js';
import { defaultManagerSettings } from '../../src/manager/config.js';
import { Farm } from '../../src/manager/farm.js';
import { PluginHost } from '../../src/events/host.js';
import { gfsSyncPlugin } from '../../src/events/plugins/gfs-sync/index.js';
import type { Store } from '../../src/store/contract.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';

/**
 * Hostile input, property-based: every endpoint that takes input gets malformed JSON, wrong
 * types, huge numbers and strings, deep nesting, unicode, path traversal, prototype keys and
 * oversized bodies. Never a 5xx, never a crash; a refusal names what was wrong and leaves
 * the store exactly as it was.
 */

const RUNS = Number(process.env.DROVER_HOSTILE_RUNS ?? 150);
const quiet = pino({ level: 'silent' });

let app: FastifyInstance;
let store: Store;
let host: PluginHost;
let db: BetterSqlite3.Database;
let admin: string;
let jobId: string;
let tried = 0;

/** A fingerprint of everything the store holds. */
function snapshot(): string {
  const tables = [
    'jobs',
    'tasks',
    'job_dependencies',
    'workers',
    'limits',
    'task_logs',
    'events',
    'plugin_settings',
    'path_mappings',
    'tokens',
  ];
  const h = createHash('sha256');
  for (const t of tables)
    h.update(JSON.stringify(db.prepare(`select * from ${t} order by rowid`).all()));
  return h.digest('hex');
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-hostile-'));
  store = await openSqliteStore(join(dir, 'drover.db'));
  const auth = new Authenticator(store);
  admin = (await ensureAdminToken(store, auth, dir))!;
  const farm = new Farm(store, defaultManagerSettings, quiet);
  host = new PluginHost({ store, plugins: [gfsSyncPlugin], log: quiet });
  await host.start();
  farm.plugins = host;
  app = buildApp(farm, quiet, { auth });
  await app.ready();
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/jobs',
    headers: { authorization: `Bearer ${admin}` },
    payload: { plugin: 'CommandLine', pluginInfo: { executable: '/bin/true' }, frames: '1-3' },
  });
  jobId = res.json().job.id;
  await app.inject({
    method: 'POST',
    url: '/api/v1/workers/register',
    headers: { authorization: `Bearer ${admin}` },
    payload: { name: 'w1', capabilities: { cpus: 1, memoryMb: 1, os: 'linux' } },
  });
  db = new BetterSqlite3(join(dir, 'drover.db'), { readonly: true });
});

afterAll(async () => {
  db.close();
  await app.close();
  await host.stop();
  await store.close();
  console.log(`hostile input: ${tried} requests tried`);
});

const nasty = fc.oneof(
  fc.constantFrom(
    '../../etc/passwd',
    '/gfs/../../etc',
    '..\\..\\windows',
    '\u0000',
    '\u202e\u0647\ud83d\ude00',
    '__proto__',
    'constructor',
    '%00',
    '{{7*7}}',
    '$(rm -rf /)',
    ';shutdown',
    'x'.repeat(70_000),
    '1e309',
    '-0',
  ),
  fc.string({ unit: 'grapheme', maxLength: 64 }),
  fc.string({ unit: 'binary', maxLength: 64 }),
);
const hugeNumber = fc.oneof(
  fc.constantFrom(
    Number.MAX_SAFE_INTEGER,
    -Number.MAX_SAFE_INTEGER,
    1e300,
    -1e300,
    2 ** 53 + 1,
    0.5,
    -1,
  ),
  fc.double({ noNaN: true }),
  fc.integer(),
);
const leaf = fc.oneof(nasty, hugeNumber, fc.boolean(), fc.constant(null));
/** Any JSON value, including deep nesting. */
const anyJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    leaf,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(
      fc.oneof(nasty, fc.constantFrom('__proto__', 'constructor', 'prototype')),
      tie('value'),
      { maxKeys: 4 },
    ),
  ),
})).value;
const deep = fc.integer({ min: 100, max: 1500 }).map((n) => {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v;
});

/** Valid bodies with one field replaced by something hostile. */
function mutate(valid: Record<string, unknown>): fc.Arbitrary<unknown> {
  const keys = Object.keys(valid);
  return fc
    .record({ key: fc.oneof(fc.constantFrom(...keys), nasty), value: fc.oneof(anyJson, deep) })
    .map(({ key, value }) => ({ ...valid, [key]: value }));
}

const endpoints: Array<{
  method: 'POST' | 'PATCH' | 'PUT' | 'GET' | 'DELETE';
  url: () => string;
  valid?: Record<string, unknown>;
}> = [
  {
    method: 'POST',
    url: () => '/api/v1/jobs',
    valid: {
      plugin: 'CommandLine',
      pluginInfo: { executable: '/bin/true' },
      frames: '1-10',
      outputDirectories: ['/gfs/a'],
    },
  },
  { method: 'PATCH', url: () => `/api/v1/jobs/${jobId}`, valid: { priority: 10 } },
  { method: 'POST', url: () => `/api/v1/jobs/${jobId}/actions`, valid: { action: 'suspend' } },
  { method: 'POST', url: () => `/api/v1/jobs/${jobId}/tasks/requeue`, valid: { tasks: [0] } },
  {
    method: 'POST',
    url: () => '/api/v1/workers/register',
    valid: { name: 'w2', capabilities: { cpus: 1, memoryMb: 1, os: 'linux' } },
  },
  { method: 'POST', url: () => '/api/v1/workers/w1/heartbeat', valid: { tasks: [] } },
  { method: 'POST', url: () => '/api/v1/workers/w1/work', valid: { waitMs: 0, claim: false } },
  { method: 'POST', url: () => '/api/v1/workers/w1/logs', valid: { lease: 'x', chunks: [] } },
  {
    method: 'POST',
    url: () => '/api/v1/workers/w1/report',
    valid: { lease: 'x', outcome: 'completed' },
  },
  { method: 'PATCH', url: () => '/api/v1/workers/w1', valid: { enabled: true } },
  { method: 'PUT', url: () => '/api/v1/limits/nuke', valid: { max: 2 } },
  {
    method: 'PATCH',
    url: () => '/api/v1/plugins/gfs-sync',
    valid: { config: { iterationCount: 5 } },
  },
  { method: 'POST', url: () => '/api/v1/paths', valid: { prefix: '/gfs/', replacement: '/mnt/' } },
  { method: 'POST', url: () => '/api/v1/paths/map', valid: { path: '/gfs/a', region: 'r' } },
  { method: 'POST', url: () => '/api/v1/tokens', valid: { name: 'n', role: 'user' } },
];

async function send(
  method: string,
  url: string,
  payload: string | undefined,
  contentType = 'application/json',
) {
  tried++;
  const before = snapshot();
  const res = await app.inject({
    method: method as 'POST',
    url,
    headers: {
      authorization: `Bearer ${admin}`,
      ...(payload !== undefined ? { 'content-type': contentType } : {}),
    },
    ...(payload !== undefined ? { payload } : {}),
  });
  expect(
    res.statusCode,
    `${method} ${url} → ${res.statusCode}: ${res.body.slice(0, 300)}`,
  ).toBeLessThan(500);
  if (res.statusCode >= 400) {
    const body = res.json<{ error: { code: string; message: string; field?: string } }>();
    expect(
      typeof body.error?.code,
      `${method} ${url.slice(0, 200)} → ${res.statusCode}: ${res.body.slice(0, 300)}`,
    ).toBe('string');
    expect(body.error.message.length).toBeGreaterThan(0);
    if (body.error.code === 'invalid_input') expect(body.error.field, res.body).toBeTruthy();
    expect(snapshot(), `${method} ${url} changed the store although it was refused`).toBe(before);
  }
  return res;
}

describe('hostile input', () => {
  for (const e of endpoints) {
    it(`${e.method} ${e.url().replace(jobId, ':id')}: hostile bodies never break the manager`, async () => {
      const bodies = fc.oneof(anyJson, deep, e.valid ? mutate(e.valid) : anyJson);
      await fc.assert(
        fc.asyncProperty(bodies, async (body) => {
          await send(e.method, e.url(), JSON.stringify(body));
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('refuses malformed JSON and wrong content types without a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.constantFrom(...endpoints),
        async (raw, e) => {
          await send(e.method, e.url(), raw);
          await send(e.method, e.url(), raw, 'text/plain');
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('refuses 50,000-deep JSON without a 5xx', async () => {
    for (const e of endpoints) {
      await send(e.method, e.url(), '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000));
      await send(e.method, e.url(), '['.repeat(50_000) + ']'.repeat(50_000));
    }
  });

  it('refuses oversized bodies with 413', async () => {
    const res = await send(
      'POST',
      '/api/v1/jobs',
      JSON.stringify({ plugin: 'CommandLine', comment: 'x'.repeat(3 * 1024 * 1024) }),
    );
    expect(res.statusCode).toBe(413);
  });

  it('survives hostile path parameters and query strings', async () => {
    const segment = fc.oneof(nasty, fc.constantFrom('..', '%2e%2e', '%00', 'a'.repeat(5000)));
    await fc.assert(
      fc.asyncProperty(segment, nasty, async (seg, q) => {
        const s = encodeURIComponent(seg);
        const query = `?state=${encodeURIComponent(q)}&limit=${encodeURIComponent(q)}&after=${encodeURIComponent(q)}&type=${encodeURIComponent(q)}`;
        for (const url of [
          `/api/v1/jobs/${s}`,
          `/api/v1/jobs/${s}/tasks${query}`,
          `/api/v1/jobs/${jobId}/tasks/${s}/log${query}`,
          `/api/v1/jobs${query}`,
          `/api/v1/events${query}`,
          `/api/v1/workers/${s}`,
          `/api/v1/plugins/${s}`,
          `/api/v1/outputs/${s}`,
        ]) {
          await send('GET', url, undefined);
        }
        await send('DELETE', `/api/v1/paths/${s}`, undefined);
        await send('DELETE', `/api/v1/tokens/${s}`, undefined);
      }),
      { numRuns: RUNS },
    );
  });
});
