import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDatabase, dropDatabase } from '../../src/store/postgres/index.js';

/**
 * The server the bench uses: the one the store tests use (`DROVER_TEST_POSTGRES_URL`, default
 * the local server with trust auth; see `src/store/conformance/postgres-databases.ts`).
 */
export const POSTGRES_URL =
  process.env.DROVER_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Whether PostgreSQL answers; the PostgreSQL rows are left out when it does not. */
export async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A fresh, empty database for one run; `drop` removes it. */
export async function scratchDatabase(
  label: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `drover_bench_${label}_${randomBytes(3).toString('hex')}`;
  const url = await createDatabase(POSTGRES_URL, name);
  return { url, drop: () => dropDatabase(POSTGRES_URL, name) };
}

/** Runs one SQL statement against `url` on its own connection. */
export async function query<T extends pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}
