import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import pino from 'pino';
import { LocalProvider } from '../../src/fleet/providers/local.js';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { overHttp, type HttpAnswer } from '../farm.js';
import { buildDeadlineApp } from '../../src/compat/deadline/server.js';
import { buildApp } from '../../src/manager/app.js';
import { AuxFileStore } from '../../src/manager/aux-files.js';
import { Authenticator, ensureAdminToken } from '../../src/manager/auth.js';
import { defaultManagerSettings } from '../../src/manager/config.js';
import { Farm } from '../../src/manager/farm.js';
import { PluginHost } from '../../src/events/host.js';
import { gfsSyncPlugin } from '../../src/events/plugins/gfs-sync/index.js';
import type { Store } from '../../src/store/contract.js';
import { openStore } from '../../src/store/open.js';
import { createDatabase, dropDatabase } from '../../src/store/postgres/index.js';
import { TEST_POSTGRES_URL, withPostgres } from '../../src/store/conformance/postgres-databases.js';

/**
 * One manager for the hostile-input tests, on SQLite or on PostgreSQL, with a fingerprint
 * of everything its store holds: a refused request must leave that fingerprint as it was.
 * Both stores run the same suites because they fail differently: SQLite stores a NUL that
 * PostgreSQL's `text` refuses with a driver error (a 500 before `text()` refused it at the
 * edge).
 */

/** Property runs on SQLite; `DROVER_HOSTILE_RUNS` overrides. */
export const RUNS = Number(process.env.DROVER_HOSTILE_RUNS ?? 150);
/**
 * Property runs on PostgreSQL: a third of SQLite's. Each request there costs two snapshot
 * round trips and a network commit, and CI has two cores shared with other test files.
 */
export const PG_RUNS = Math.max(10, Math.ceil(RUNS / 3));

const quiet = pino({ level: 'silent' });

/**
 * Tables left out of the fingerprint. The plugin host moves its event cursors while it
 * consumes the log in the background, whatever the request was; migration bookkeeping is
 * written once at open.
 */
const UNSNAPSHOTTED = new Set([
  'event_cursors',
  'kysely_migration',
  'kysely_migration_lock',
  'sqlite_sequence',
]);

export interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

export type Answer = HttpAnswer;

export interface HostileFarm {
  store: 'sqlite' | 'postgres';
  app: FastifyInstance;
  /** An admin token: every request passes the access check and reaches its validation. */
  admin: string;
  /** A job that exists (`CommandLine`, frames 1-3). */
  jobId: string;
  /** Requests sent so far. */
  tried: number;
  /** The fingerprint of everything the store holds (the rows of every table). */
  fingerprint(): Promise<string>;
  /**
   * Sends a request as admin and checks what every answer owes: never a 5xx; a refusal is
   * JSON naming its code and message (and the field, for `invalid_input`) and leaves the
   * store exactly as it was.
   */
  send(
    method: string,
    url: string,
    payload?: string,
    contentType?: string,
    over?: 'inject' | 'http',
  ): Promise<Answer>;
  /**
   * The same, to the Deadline Web Service over the same store (Basic auth as admin): never a
   * 5xx; a refusal is a non-empty text and leaves the store exactly as it was.
   */
  sendDeadline(
    method: string,
    url: string,
    payload?: string,
    contentType?: string,
  ): Promise<Answer>;
}

/** A fingerprint of every table, independent of row order. */
type Snapshot = () => Promise<string>;

function digest(tables: [string, string[]][]): string {
  const h = createHash('sha256');
  for (const [name, rows] of tables) h.update(`${name}\n${rows.join('\n')}\n`);
  return h.digest('hex');
}

function sqliteSnapshot(file: string): { snapshot: Snapshot; close(): void } {
  const db = new BetterSqlite3(file, { readonly: true });
  const snapshot: Snapshot = () => {
    const names = db
      .prepare<[], { name: string }>(
        "select name from sqlite_master where type = 'table' order by name",
      )
      .all()
      .map((r) => r.name)
      .filter((n) => !UNSNAPSHOTTED.has(n));
    // Every row as JSON, sorted: the same rows give the same fingerprint in any order.
    const tables = names.map((n): [string, string[]] => [
      n,
      db
        .prepare(`select * from "${n}"`)
        .all()
        .map((r) => JSON.stringify(r))
        .sort(),
    ]);
    return Promise.resolve(digest(tables));
  };
  return { snapshot, close: () => db.close() };
}

async function postgresSnapshot(
  url: string,
): Promise<{ snapshot: Snapshot; close(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  const names = (
    await client.query<{ name: string }>(
      `select table_name as name from information_schema.tables
        where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name`,
    )
  ).rows
    .map((r) => r.name)
    .filter((n) => !UNSNAPSHOTTED.has(n));
  // One round trip: each table's rows as text, ordered by their whole text (all columns).
  const query = `select ${names
    .map(
      (n, i) =>
        `(select coalesce(string_agg(r_::text, E'\\n' order by r_::text collate "C"), '') from "${n}" r_) as t${i}`,
    )
    .join(', ')}`;
  const snapshot: Snapshot = async () => {
    const row = (await client.query<Record<string, string>>(query)).rows[0]!;
    return digest(names.map((n, i): [string, string[]] => [n, [row[`t${i}`] ?? '']]));
  };
  return { snapshot, close: () => client.end() };
}

async function startHostileFarm(
  storeKind: HostileFarm['store'],
  store: Store,
  snapshot: Snapshot,
): Promise<HostileFarm & { stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'drover-hostile-'));
  const auth = new Authenticator(store);
  const admin = (await ensureAdminToken(store, auth, dir))!;
  const farm = new Farm(store, defaultManagerSettings, quiet);
  const host = new PluginHost({ store, plugins: [gfsSyncPlugin], log: quiet });
  await host.start();
  farm.plugins = host;
  farm.auxFiles = new AuxFileStore(join(dir, 'aux-files'), [dir, '/proc', '/sys', '/dev']);
  // A fleet to change (the provider is never asked to launch: no scaler runs here).
  farm.fleets.addProvider(new LocalProvider({ data: join(dir, 'fleets') }));
  await farm.fleets.create({ name: 'f0', provider: 'local', region: 'r1', max: 2 });
  const app = buildApp(farm, quiet, { auth });
  const deadline = buildDeadlineApp(farm, quiet, { access: auth, allowedHosts: [] });
  await deadline.ready();
  const base = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
  const job = await app.inject({
    method: 'POST',
    url: '/api/v1/jobs',
    headers: { authorization: `Bearer ${admin}` },
    payload: { plugin: 'CommandLine', pluginInfo: { executable: '/bin/true' }, frames: '1-3' },
  });
  expect(job.statusCode, job.body).toBe(201);
  const worker = await app.inject({
    method: 'POST',
    url: '/api/v1/workers/register',
    headers: { authorization: `Bearer ${admin}` },
    payload: { name: 'w1', capabilities: { cpus: 1, memoryMb: 1, os: 'linux' } },
  });
  expect(worker.statusCode, worker.body).toBe(200);

  const self: HostileFarm & { stop(): Promise<void> } = {
    store: storeKind,
    app,
    admin,
    jobId: job.json<{ job: { id: string } }>().job.id,
    tried: 0,
    fingerprint: snapshot,
    async send(method, url, payload, contentType = 'application/json', over = 'inject') {
      self.tried++;
      // On PostgreSQL committed events get their `seq` when a reader publishes them (the
      // plugin host reads in the background): publish first, so only the request can move it.
      await store.latestEventSeq();
      const before = await snapshot();
      const headers = {
        authorization: `Bearer ${admin}`,
        ...(payload !== undefined ? { 'content-type': contentType } : {}),
      };
      const res =
        over === 'http'
          ? await overHttp(base, method, url, headers, payload)
          : await app.inject({
              method: method as 'POST',
              url,
              headers,
              ...(payload !== undefined ? { payload } : {}),
            });
      const where = `${storeKind}: ${method} ${url.slice(0, 200)} → ${res.statusCode}: ${res.body.slice(0, 300)}`;
      expect(res.statusCode, where).toBeLessThan(500);
      if (res.statusCode >= 400) {
        const body = res.json<ErrorBody>();
        expect(typeof body.error?.code, where).toBe('string');
        expect(body.error.message.length, where).toBeGreaterThan(0);
        if (body.error.code === 'invalid_input') expect(body.error.field, where).toBeTruthy();
        expect(await snapshot(), `${where}: changed the store although it was refused`).toBe(
          before,
        );
      }
      return res;
    },
    async sendDeadline(method, url, payload, contentType = 'application/json') {
      self.tried++;
      await store.latestEventSeq();
      const before = await snapshot();
      const res = await deadline.inject({
        method: method as 'POST',
        url,
        headers: {
          authorization: `Basic ${Buffer.from(`admin:${admin}`).toString('base64')}`,
          ...(payload !== undefined ? { 'content-type': contentType } : {}),
        },
        ...(payload !== undefined ? { payload } : {}),
      });
      const where = `${storeKind}: Deadline ${method} ${url.slice(0, 200)} → ${res.statusCode}: ${res.body.slice(0, 300)}`;
      // 501 is Deadline's own answer for what it (or Drover) does not support.
      if (res.statusCode !== 501) expect(res.statusCode, where).toBeLessThan(500);
      if (res.statusCode >= 400) {
        expect(res.headers['content-type'], where).toMatch(/^text\/plain/);
        expect(res.body.length, where).toBeGreaterThan(0);
        expect(await snapshot(), `${where}: changed the store although it was refused`).toBe(
          before,
        );
      }
      return res;
    },
    async stop() {
      await deadline.close();
      await app.close();
      await host.stop();
      await store.close();
    },
  };
  return self;
}

/**
 * Declares `suite` twice: on a SQLite file and on a PostgreSQL database (one per suite,
 * dropped afterwards; skipped with a line saying why when PostgreSQL is unreachable, see
 * `withPostgres`). `farm()` is the running manager inside the suite's tests; `runs` is the
 * property run count for that store.
 */
export async function onEachStore(
  title: string,
  suite: (farm: () => HostileFarm, runs: number) => void,
): Promise<void> {
  describe(`${title} (sqlite)`, () => {
    let farm: Awaited<ReturnType<typeof startHostileFarm>> | undefined;
    let snap: ReturnType<typeof sqliteSnapshot> | undefined;
    beforeAll(async () => {
      const file = join(mkdtempSync(join(tmpdir(), 'drover-hostile-db-')), 'drover.db');
      const store = await openStore(file);
      snap = sqliteSnapshot(file);
      farm = await startHostileFarm('sqlite', store, snap.snapshot);
    });
    afterAll(async () => {
      snap?.close();
      await farm?.stop();
      if (farm) console.log(`${title} (sqlite): ${farm.tried} requests tried`);
    });
    suite(() => farm!, RUNS);
  });

  await withPostgres(`${title} (postgres)`, () => {
    describe(`${title} (postgres)`, () => {
      const name = `drover_hostile_${process.pid}_${randomBytes(3).toString('hex')}`;
      let farm: Awaited<ReturnType<typeof startHostileFarm>> | undefined;
      let snap: Awaited<ReturnType<typeof postgresSnapshot>> | undefined;
      let created = false;
      beforeAll(async () => {
        const url = await createDatabase(TEST_POSTGRES_URL, name);
        created = true;
        const store = await openStore(url, { poolSize: 4 });
        snap = await postgresSnapshot(url);
        farm = await startHostileFarm('postgres', store, snap.snapshot);
      }, 60_000);
      afterAll(async () => {
        await snap?.close();
        await farm?.stop();
        if (created) await dropDatabase(TEST_POSTGRES_URL, name);
        if (farm) console.log(`${title} (postgres): ${farm.tried} requests tried`);
      });
      suite(() => farm!, PG_RUNS);
    });
  });
}
