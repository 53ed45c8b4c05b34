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

/** What the server's connections to one database were doing, sampled (`waitSampler`). */
export interface WaitSamples {
  /** Connection samples running a statement (`state = 'active'`). */
  active: number;
  /** … of them waiting for a lock held by another transaction (`wait_event_type = 'Lock'`). */
  lock: number;
  /** … waiting for the WAL to be flushed at COMMIT (`IO`/`WALSync`, `LWLock`/`WALWrite`). */
  wal: number;
  /**
   * The lock waits by what was waited for: `wait_event` (`transactionid`, `tuple`,
   * `advisory`, …) and, for row locks, the table (the relation of the waiter's `tuple` lock
   * or of the statement it runs: `jobs`, `limits`, `tasks`).
   */
  lockOn: Record<string, number>;
}

/**
 * Samples `pg_stat_activity` for the connections to `url`'s database every `everyMs`, on its
 * own connection, until `stop()` — the profile that says whether claims queue behind a lock.
 */
export async function waitSampler(
  url: string,
  everyMs = 20,
): Promise<{ stop(): Promise<WaitSamples> }> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  const totals: WaitSamples = { active: 0, lock: 0, wal: 0, lockOn: {} };
  let running = true;
  const loop = (async () => {
    while (running) {
      const r = await client.query<{ active: string; lock: string; wal: string }>(
        `select count(*) filter (where state = 'active') as active,
           count(*) filter (where state = 'active' and wait_event_type = 'Lock') as lock,
           count(*) filter (where state = 'active'
             and wait_event in ('WALSync', 'WALWrite', 'WALInsert')) as wal
         from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`,
      );
      totals.active += Number(r.rows[0]!.active);
      totals.lock += Number(r.rows[0]!.lock);
      totals.wal += Number(r.rows[0]!.wal);
      if (Number(r.rows[0]!.lock) > 0) {
        // What the waiters wait for: the statement's first table word is a cheap, honest hint.
        const on = await client.query<{ what: string; n: string }>(
          `select wait_event || ' ' || coalesce(substring(query from
               '(?:update|from|into)\\s+"?([a-z_]+)'), '?') as what, count(*) as n
           from pg_stat_activity where datname = current_database() and state = 'active'
             and wait_event_type = 'Lock' and pid <> pg_backend_pid() group by 1`,
        );
        for (const row of on.rows)
          totals.lockOn[row.what] = (totals.lockOn[row.what] ?? 0) + Number(row.n);
      }
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await client.end().catch(() => undefined);
      return totals;
    },
  };
}

/** The lock waits of a sample, largest first: `transactionid tasks: 40%, …` of lock samples. */
export function lockBreakdown(w: WaitSamples): string {
  return Object.entries(w.lockOn)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([what, n]) => `${what}: ${((100 * n) / Math.max(1, w.lock)).toFixed(0)}%`)
    .join(', ');
}
