import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { invalid } from '../../core/errors.js';
import type { StoreOptions } from '../contract.js';
import { migrate } from '../sql/migrate.js';
import { preparedName } from '../sql/prepared.js';
import type { Database } from '../sql/schema.js';
import { SqlStore } from '../sql/store.js';
import { PG_CHANNEL, PgNotifier } from './notifier.js';

export interface PostgresStoreOptions extends StoreOptions {
  /** Connections in the pool (default 16: DESIGN.md measured 16 claimers at ≈3.1k cycles/s). */
  poolSize?: number;
}

export const DEFAULT_POOL_SIZE = 16;

/**
 * bigint (int8) columns hold milliseconds and sequence numbers: parse them as numbers (pg
 * returns strings by default). A value past 2^53 stays a string, which `num()` still folds.
 * Set per pool, not on pg's global parser table, so other pg users in the process keep theirs.
 */
const INT8_OID = 20;
const parseInt8 = (value: string): number | string => {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value;
};
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID && format !== 'binary'
      ? parseInt8
      : (pg.types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format),
};

function clientConfig(url: string): pg.ClientConfig {
  return {
    connectionString: url,
    types,
    application_name: 'drover',
    // A half-open connection (a network partition) is noticed instead of hanging forever.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    connectionTimeoutMillis: 10_000,
  };
}

/**
 * A store's connection pool as the manager's metrics see it: connections now (`total`,
 * `idle`, and callers `waiting` for one) and, for every connection handed out, how long the
 * caller waited for it (`onAcquire`). Read with `postgresPool(store)`.
 */
export interface PoolMonitor {
  /** The pool's size (`poolSize`). */
  readonly max: number;
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
  /**
   * Calls `listener` with the seconds each `pool.connect()` took (waiting for a free
   * connection, or opening one); returns the unsubscribe function. Costs two clock reads per
   * checkout, nothing when no one listens.
   */
  onAcquire(listener: (seconds: number) => void): () => void;
}

const monitors = new WeakMap<object, PoolMonitor>();

/** The pool of a store opened by `openPostgresStore`; undefined for any other store. */
export function postgresPool(store: object): PoolMonitor | undefined {
  return monitors.get(store);
}

function openPool(url: string, poolSize: number): { db: Kysely<Database>; monitor: PoolMonitor } {
  if (!Number.isInteger(poolSize) || poolSize < 1) {
    throw invalid('poolSize', 'must be a positive whole number');
  }
  const pool = new pg.Pool({ ...clientConfig(url), max: poolSize });
  // An idle pooled connection that dies emits `error` on the pool; unhandled, that would
  // crash the process. The pool has already dropped it: nothing else to do.
  pool.on('error', () => undefined);
  // A checked-out connection that dies emits `error` on its client too; the query running on
  // it fails with the same error, which is where it is handled.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
    // The store's fixed SQL texts run as named prepared statements (`sql/prepared.ts`).
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    client.query = ((config: unknown, values?: unknown, callback?: unknown) => {
      const name = typeof config === 'string' ? preparedName(config) : undefined;
      if (name !== undefined && Array.isArray(values)) {
        return query({ name, text: config, values }, callback);
      }
      return query(config, values, callback);
    }) as typeof client.query;
  });
  const listeners = new Set<(seconds: number) => void>();
  // Kysely checks connections out with the promise form of `connect()`; time those.
  const connect = pool.connect.bind(pool) as (callback?: unknown) => Promise<pg.PoolClient>;
  pool.connect = ((callback?: unknown) => {
    if (callback !== undefined || listeners.size === 0) return connect(callback);
    const started = performance.now();
    return connect().then((client) => {
      const seconds = (performance.now() - started) / 1000;
      for (const l of listeners) l(seconds);
      return client;
    });
  }) as typeof pool.connect;
  const monitor: PoolMonitor = {
    max: poolSize,
    get total() {
      return pool.totalCount;
    },
    get idle() {
      return pool.idleCount;
    },
    get waiting() {
      return pool.waitingCount;
    },
    onAcquire(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), monitor };
}

/**
 * A Kysely instance over a pg pool, without migrating. Connections the server drops (a
 * restart, `pg_terminate_backend`) are thrown away by the pool and replaced on demand.
 */
export function openPostgresDatabase(url: string, poolSize = DEFAULT_POOL_SIZE): Kysely<Database> {
  return openPool(url, poolSize).db;
}

/**
 * Opens (migrating) the PostgreSQL store at `url` (`postgres://user:pass@host:5432/db`).
 * Several managers may open one database at once: migrations run under an advisory lock,
 * and the store's SQL is safe across connections (see `src/store/sql/dispatch.ts`).
 */
export async function openPostgresStore(
  url: string,
  options: PostgresStoreOptions = {},
): Promise<SqlStore> {
  const { db, monitor } = openPool(url, options.poolSize ?? DEFAULT_POOL_SIZE);
  try {
    await migrate(db as unknown as Kysely<unknown>, 'postgres');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  const notifier = new PgNotifier(
    () => new pg.Client(clientConfig(url)),
    async (payload) => {
      await sql`select pg_notify(${PG_CHANNEL}, ${payload})`.execute(db);
    },
  );
  const store = new SqlStore(db, 'postgres', options, notifier);
  monitors.set(store, monitor);
  return store;
}

// ── databases, for tests and set-up ─────────────────────────────────────────

const DATABASE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function checkName(name: string): void {
  if (!DATABASE_NAME.test(name)) {
    throw invalid('database', `${name}: use lower-case letters, digits and _ (at most 63)`);
  }
}

/** `url` with its database replaced by `name`. */
export function databaseUrl(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function withAdmin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(clientConfig(databaseUrl(url, 'postgres')));
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Creates database `name` on the server of `url` (a copy of `template` when given: cloning a
 * migrated template is much faster than migrating, as graphile-worker's tests do); returns
 * its URL. The template must have no open connections.
 */
export async function createDatabase(
  url: string,
  name: string,
  template?: string,
): Promise<string> {
  checkName(name);
  if (template !== undefined) checkName(template);
  await withAdmin(url, (c) =>
    c.query(`create database ${name}${template === undefined ? '' : ` template ${template}`}`),
  );
  return databaseUrl(url, name);
}

/** Drops database `name` if it exists, disconnecting whoever is still on it. */
export async function dropDatabase(url: string, name: string): Promise<void> {
  checkName(name);
  await withAdmin(url, (c) => c.query(`drop database if exists ${name} with (force)`));
}
