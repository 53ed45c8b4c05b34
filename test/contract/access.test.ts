import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Validator } from '@seriousme/openapi-schema-validator';
import { fullPath, requestOf, rolesFor, type RouteDef } from '../../src/api/contract.js';
import { routes, type RouteName } from '../../src/api/routes.js';
import { buildApp } from '../../src/manager/app.js';
import { Authenticator, ensureAdminToken } from '../../src/manager/auth.js';
import { defaultManagerSettings } from '../../src/manager/config.js';
import { Farm } from '../../src/manager/farm.js';
import { PluginHost } from '../../src/events/host.js';
import { gfsSyncPlugin } from '../../src/events/plugins/gfs-sync/index.js';
import { servedRoutes } from '../../src/manager/http/serve.js';
import type { Store } from '../../src/store/contract.js';
import { openStore } from '../../src/store/open.js';
import { TestDatabases, withPostgres } from '../../src/store/conformance/postgres-databases.js';
import { submit } from '../../src/store/conformance/harness.js';
import { overHttp } from '../farm.js';

/**
 * The route contract, checked from outside over real HTTP: for every declared route, every
 * principal and every spelling of its path, the answer is what the declaration says — and
 * the server serves exactly the declared routes. Runs on SQLite and on PostgreSQL (ownership
 * is decided from the store).
 */

const quiet = pino({ level: 'silent' });

interface Principal {
  label: string;
  role: 'admin' | 'user' | 'worker' | 'read-only' | null;
  /** The user name (users) or worker pattern (workers). */
  name: string;
  token?: string;
}

const principals: Principal[] = [
  { label: 'none', role: null, name: '' },
  { label: 'read-only', role: 'read-only', name: 'viewer' },
  { label: 'user', role: 'user', name: 'alice' },
  { label: 'other user', role: 'user', name: 'bob' },
  { label: 'worker', role: 'worker', name: 'w-alice' },
  { label: 'other worker', role: 'worker', name: 'w-bob' },
  { label: 'admin', role: 'admin', name: 'admin' },
];

/** The job every job route names: alice's. */
let jobId = '';

/**
 * One request per route that passes validation when access allows it, so that an ownership
 * check (which needs the validated inputs) is reached. A new route without a sample is a
 * type error here.
 */
function samples(): Record<RouteName, { params?: unknown; query?: unknown; body?: unknown }> {
  const capabilities = { cpus: 1, memoryMb: 1, os: 'linux' };
  return {
    health: {},
    openapi: {},
    whoami: {},
    replication: {},
    listEvents: {},
    // An invalid cursor: refused after the access check, before the stream opens.
    eventStream: { query: { after: 'x' } },
    listLimits: {},
    setLimit: { params: { name: 'licence' }, body: { max: 'x' } },
    submitJob: { body: { plugin: 'CommandLine', frames: 'x' } },
    listJobs: {},
    getJob: { params: { id: jobId } },
    updateJob: { params: { id: jobId }, body: { priority: 51 } },
    jobAction: { params: { id: jobId }, body: { action: 'release' } },
    listTasks: { params: { id: jobId } },
    requeueTasks: { params: { id: jobId }, body: { tasks: [0] } },
    taskLog: { params: { id: jobId, index: 0 } },
    latestOutput: { params: { id: jobId } },
    outputImage: { params: { id: jobId, directory: 0, name: 'a.png' } },
    listWorkers: {},
    getWorker: { params: { name: 'w-alice' } },
    setWorkerEnabled: { params: { name: 'w-alice' }, body: { enabled: 'x' } },
    registerWorker: { body: { name: 'w-alice', capabilities } },
    heartbeat: { params: { name: 'w-alice' }, body: {} },
    work: { params: { name: 'w-alice' }, body: { claim: false } },
    reportTask: { params: { name: 'w-alice' }, body: { lease: 'gone', outcome: 'completed' } },
    appendLogs: { params: { name: 'w-alice' }, body: { lease: 'gone', chunks: [] } },
    workerStopped: { params: { name: 'w-alice' }, body: {} },
    // The worker holds no task of the job: a 404 after the access check.
    fetchAuxFile: { params: { name: 'w-alice', job: jobId, index: 0 } },
    // Not base64: refused after the access check.
    uploadAuxFile: { body: { name: 'scene.ma', content: '***' } },
    listPlugins: {},
    getPlugin: { params: { name: 'gfs-sync' } },
    configurePlugin: { params: { name: 'gfs-sync' }, body: {} },
    listPathMappings: {},
    addPathMapping: { body: { prefix: '' } },
    removePathMapping: { params: { id: 999 } },
    mapPath: { body: { path: '/a', region: 'r' } },
    createToken: { body: { name: 'x' } },
    listTokens: {},
    revokeToken: { params: { id: 'nope' } },
    metrics: {},
    monitor: {},
    listFleets: {},
    getFleet: { params: { name: 'nope' } },
    fleetHistory: { params: { name: 'nope' } },
    createFleet: { body: { name: 'x' } },
    updateFleet: { params: { name: 'nope' }, body: {} },
    deleteFleet: { params: { name: 'nope' } },
    listProducts: {},
    listVersions: {},
    latestVersion: { query: { product: 'show/sh010/beauty' } },
    getVersion: { params: { id: 'abc' } },
    approveVersion: { params: { id: 'abc' }, body: {} },
    rejectVersion: { params: { id: 'abc' }, body: {} },
    // Publishing is not configured in this farm: refused after the access check.
    publishFolder: { body: { folder: '/nowhere', product: 'show/sh010/beauty' } },
    versionThumbnail: { params: { id: 'abc' } },
    versionMovie: { params: { id: 'abc' } },
  };
}

/** What the declaration says a principal gets: refused (401/403) or let through. */
function expected(def: RouteDef, p: Principal): 401 | 403 | 'through' {
  if (def.access === 'public') return 'through';
  if (p.role === null) return 401;
  if (!(rolesFor[def.access] as readonly string[]).includes(p.role)) return 403;
  if (def.owner === 'job' && p.role === 'user' && p.name !== 'alice') return 403;
  if (def.owner === 'worker' && p.role === 'worker' && p.name !== 'w-alice') return 403;
  return 'through';
}

/** The spellings of one request target; `same` ones must be answered as the canonical one. */
function spellings(
  path: string,
  query: string,
): { label: string; target: string; same: boolean }[] {
  const q = query ? `?${query}` : '';
  const encodeFirstLetter = path.replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`);
  const encodeLastLetter = path.replace(
    /[a-z](?=[^a-z]*$)/,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return [
    { label: 'canonical', target: path + q, same: true },
    { label: 'percent-encoded letter', target: encodeFirstLetter + q, same: true },
    { label: 'percent-encoded last letter', target: encodeLastLetter + q, same: true },
    { label: 'double slash', target: path.replace('/', '//') + q, same: false },
    { label: 'inner double slash', target: path.replace(/\/(?=[^/]*$)/, '//') + q, same: false },
    // Only between segments: a one-segment path (`/metrics`) has no inner slash to encode.
    ...(path.lastIndexOf('/') > 0
      ? [{ label: 'encoded slash', target: path.replace(/\/(?=[^/]*$)/, '%2F') + q, same: false }]
      : []),
    { label: 'absolute-form', target: `http://drover.test${path}${q}`, same: false },
    { label: 'trailing dot segment', target: `${path}/.${q}`, same: false },
    { label: 'dot-dot segment', target: `${path}/x/..${q}`, same: false },
    { label: 'encoded dot-dot', target: `${path}/x/%2e%2e${q}`, same: false },
  ];
}

/** One request with its target as written (absolute-form included), as a principal. */
async function send(
  base: URL,
  method: string,
  target: string,
  token: string | undefined,
  body: unknown,
): Promise<{ status: number; body: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const a = await overHttp(
    base,
    method,
    target,
    {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    payload,
  );
  return { status: a.statusCode, body: a.body };
}

function contractSuite(label: string, open: () => Promise<Store>): void {
  describe(`route contract (${label})`, () => {
    let app: FastifyInstance;
    let store: Store;
    let base: URL;
    let host: PluginHost;

    beforeAll(async () => {
      store = await open();
      const dir = mkdtempSync(join(tmpdir(), 'drover-contract-'));
      const auth = new Authenticator(store);
      // The admin token first: a store's first token is its admin token.
      principals.find((p) => p.role === 'admin')!.token = await ensureAdminToken(store, auth, dir);
      for (const p of principals) {
        if (p.role === 'admin' || p.role === null) continue;
        else if (p.role === 'worker')
          p.token = (await auth.createToken(`t-${p.name}`, 'worker', p.name)).secret;
        else if (p.role) p.token = (await auth.createToken(p.name, p.role)).secret;
      }
      jobId = (await submit(store, { user: 'alice', name: 'alices job' })).id;
      const farm = new Farm(store, defaultManagerSettings, quiet);
      host = new PluginHost({ store, plugins: [gfsSyncPlugin], log: quiet });
      await host.start();
      farm.plugins = host;
      app = buildApp(farm, quiet, { auth });
      base = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
    });
    afterAll(async () => {
      await app?.close();
      await host?.stop();
      await store?.close();
    });

    it('serves exactly the declared routes, and refuses to add an undeclared one', async () => {
      const declared = (Object.values(routes) as RouteDef[])
        .map((d) => `${d.method} ${fullPath(d)}`)
        .sort();
      expect(servedRoutes(app).sort()).toEqual(declared);
      // Every route of the manager comes from the contract: a hand-added one stops the start.
      const other = buildApp(new Farm(store, defaultManagerSettings, quiet), quiet, {
        auth: 'none',
      });
      try {
        expect(() => other.get('/api/v1/sneaky', () => 'hi')).toThrow(/not declared/);
      } finally {
        await other.close();
      }
    });

    it('answers every route, principal and path spelling as the declaration says', async () => {
      const sample = samples();
      const failures: string[] = [];
      let checked = 0;
      for (const [name, def] of Object.entries(routes) as [RouteName, RouteDef][]) {
        const input = sample[name];
        const r = requestOf(def, input);
        // The monitor answers any path; ask for one of its client routes.
        if (def.name === 'monitor') r.path = '/jobs/x';
        const query = new URLSearchParams(r.query).toString();
        for (const p of principals) {
          const want = expected(def, p);
          let canonical: { status: number } | undefined;
          for (const s of spellings(r.path, query)) {
            const a = await send(base, def.method, s.target, p.token, r.body);
            checked++;
            canonical ??= a;
            const where = `${def.name} as ${p.label}, ${s.label} (${def.method} ${s.target}) → ${a.status} ${a.body.slice(0, 120)}`;
            if (a.status >= 500) failures.push(`5xx: ${where}`);
            if (s.same) {
              if (a.status !== canonical.status) failures.push(`spelling differs: ${where}`);
              if (typeof want === 'number' && a.status !== want)
                failures.push(`want ${want}: ${where}`);
              if (want === 'through' && (a.status === 401 || a.status === 403))
                failures.push(`refused: ${where}`);
            } else if (def.name === 'monitor' && s.label !== 'absolute-form') {
              // The monitor's files: any public path answers a page or a 400/404, never more.
              if (a.status >= 500) failures.push(where);
            } else if (
              // Another spelling is refused outright, or routed to nothing — never let through
              // to what the principal may not do.
              ![400, 404].includes(a.status) &&
              !(typeof want === 'number' && a.status === want)
            ) {
              failures.push(`not refused: ${where}`);
            }
          }
        }
      }
      expect(failures).toEqual([]);
      expect(checked).toBeGreaterThan(Object.keys(routes).length * principals.length * 9);
    });

    it('refuses a Host name it was not given (DNS rebinding) and takes IP literals', async () => {
      const admin = principals.find((p) => p.role === 'admin')!.token!;
      const ask = async (host: string) =>
        (
          await app.inject({
            method: 'GET',
            url: '/api/v1/whoami',
            headers: { host, authorization: `Bearer ${admin}` },
          })
        ).statusCode;
      expect(await ask('evil.example:8642')).toBe(403);
      expect(await ask('127.0.0.1:8642')).toBe(200);
      expect(await ask('[::1]:8642')).toBe(200);
      expect(await ask('localhost:8642')).toBe(200);
    });

    it('checks real replies against the reply schemas they are declared with', async () => {
      const admin = principals.find((p) => p.role === 'admin')!.token!;
      const calls: [RouteDef, { params?: unknown; query?: unknown }][] = [
        [routes.health, {}],
        [routes.whoami, {}],
        [routes.listJobs, {}],
        [routes.getJob, { params: { id: jobId } }],
        [routes.listTasks, { params: { id: jobId } }],
        [routes.taskLog, { params: { id: jobId, index: 0 } }],
        [routes.listWorkers, {}],
        [routes.listEvents, {}],
        [routes.listLimits, {}],
        [routes.listPathMappings, {}],
        [routes.listTokens, {}],
        [routes.listPlugins, {}],
      ];
      for (const [def, input] of calls) {
        const r = requestOf(def, input);
        const a = await send(base, r.method, r.path, admin, undefined);
        expect(a.status, def.name).toBe(200);
        const parsed = def.reply.safeParse(JSON.parse(a.body));
        expect(parsed.error?.issues ?? [], def.name).toEqual([]);
      }
    });
  });
}

describe('OpenAPI document', () => {
  it('validates as OpenAPI 3.1 and documents the access of every route', async () => {
    const store = await openStore(':memory:');
    const app = buildApp(new Farm(store, defaultManagerSettings, quiet), quiet, { auth: 'none' });
    try {
      const res = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
      expect(res.statusCode).toBe(200);
      const doc = res.json<{
        openapi: string;
        paths: Record<string, Record<string, Record<string, unknown>>>;
      }>();
      expect(doc.openapi).toBe('3.1.0');
      const validator = new Validator();
      const result = await validator.validate(doc);
      expect(validator.version).toBe('3.1');
      expect(result.errors ?? []).toEqual([]);
      expect(result.valid).toBe(true);
      const documented: string[] = [];
      for (const [path, ops] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(ops)) {
          documented.push(`${method.toUpperCase()} ${path}`);
          expect(op['x-drover-access'], `${method} ${path}`).toMatch(
            /^(public|read|user|worker|admin)$/,
          );
          expect(op.security, `${method} ${path}`).toBeDefined();
        }
      }
      const declared = (Object.values(routes) as RouteDef[])
        .filter((d) => d.name !== 'monitor')
        .map((d) => `${d.method} ${fullPath(d).replace(/:([A-Za-z_]+)/g, '{$1}')}`);
      expect(documented.sort()).toEqual(declared.sort());
    } finally {
      await app.close();
      await store.close();
    }
  });
});

contractSuite('sqlite', () =>
  openStore(join(mkdtempSync(join(tmpdir(), 'drover-contract-db-')), 'drover.db')),
);

await withPostgres('route contract: postgres', () => {
  const dbs = new TestDatabases();
  beforeAll(() => dbs.prepareTemplate(), 60_000);
  afterAll(() => dbs.dropAll());
  contractSuite('postgres', async () => openStore(await dbs.clone()));
});
