import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, it } from 'vitest';
import { migrate } from '../sql/migrate.js';
import type { Kysely } from 'kysely';
import {
  createDatabase,
  databaseUrl,
  dropDatabase,
  openPostgresDatabase,
} from '../postgres/index.js';

/**
 * Real PostgreSQL for store tests. `DROVER_TEST_POSTGRES_URL` names a server and a user that
 * may create databases (default: postgres on 127.0.0.1:5432, trust auth); with
 * `DROVER_REQUIRE_POSTGRES=1` an unreachable server fails the tests instead of skipping them.
 */
/** Clones made ahead of the tests that will use them. */
const CLONES_AHEAD = 2;

export const TEST_POSTGRES_URL =
  process.env.DROVER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Why PostgreSQL cannot be used for tests, or undefined when it can. */
export async function postgresUnavailable(url = TEST_POSTGRES_URL): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (err) {
    return `PostgreSQL at ${url} is not reachable (${err instanceof Error ? err.message : String(err)})`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Runs `suite` when PostgreSQL is reachable; otherwise skips it with a line saying why, or
 * fails when `DROVER_REQUIRE_POSTGRES=1`.
 */
export async function withPostgres(name: string, suite: () => void): Promise<void> {
  const reason = await postgresUnavailable();
  if (reason === undefined) {
    suite();
    return;
  }
  if (process.env.DROVER_REQUIRE_POSTGRES === '1') {
    describe(name, () => {
      it('needs PostgreSQL (DROVER_REQUIRE_POSTGRES=1)', () => {
        throw new Error(reason);
      });
    });
    return;
  }
  console.log(
    `[${name}] skipped: ${reason}. Set DROVER_TEST_POSTGRES_URL to a server, or DROVER_REQUIRE_POSTGRES=1 to fail instead.`,
  );
  describe.skip(name, () => {
    it('needs PostgreSQL', () => undefined);
  });
}

/**
 * One migrated template database per test file, cloned per test (`CREATE DATABASE … TEMPLATE`,
 * as graphile-worker's tests do: far faster than migrating each time); `dropAll` removes
 * the template and every clone.
 */
export class TestDatabases {
  private readonly prefix = `drover_t${process.pid}_${randomBytes(3).toString('hex')}`;
  private readonly template = `${this.prefix}_tpl`;
  private readonly made: string[] = [];
  private count = 0;

  constructor(private readonly url = TEST_POSTGRES_URL) {}

  async prepareTemplate(): Promise<void> {
    await createDatabase(this.url, this.template);
    this.made.push(this.template);
    const db = openPostgresDatabase(databaseUrl(this.url, this.template), 1);
    try {
      await migrate(db as unknown as Kysely<unknown>, 'postgres');
    } finally {
      // A template must have no connections while it is copied.
      await db.destroy();
    }
  }

  /**
   * A fresh migrated database; returns its URL. A copy takes ≈230 ms here (WAL_LOG strategy;
   * FILE_COPY ≈460 ms), so a few are made ahead while tests run.
   */
  async clone(): Promise<string> {
    const next = this.ahead.shift() ?? this.cloneNow();
    while (this.ahead.length < CLONES_AHEAD) {
      const p = this.cloneNow();
      p.catch(() => undefined); // awaited by whoever takes it, or by dropAll
      this.ahead.push(p);
    }
    return next;
  }

  private readonly ahead: Array<Promise<string>> = [];

  private cloneNow(): Promise<string> {
    const name = `${this.prefix}_${++this.count}`;
    this.made.push(name);
    return createDatabase(this.url, name, this.template);
  }

  async dropAll(): Promise<void> {
    await Promise.allSettled(this.ahead.splice(0));
    const names = this.made.splice(0).reverse();
    const template = names.pop();
    await Promise.all(names.map((name) => dropDatabase(this.url, name)));
    if (template !== undefined) await dropDatabase(this.url, template);
  }

  /** Ends every server connection to the database at `dbUrl`, as a server restart would. */
  async terminateConnections(dbUrl: string): Promise<number> {
    const name = new URL(dbUrl).pathname.slice(1);
    const client = new pg.Client({ connectionString: this.url });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const r = await client.query<{ n: string }>(
        `select count(pg_terminate_backend(pid))::text as n from pg_stat_activity
          where datname = $1 and pid <> pg_backend_pid()`,
        [name],
      );
      return Number(r.rows[0]?.n ?? 0);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
