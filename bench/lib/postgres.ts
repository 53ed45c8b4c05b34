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
   * The lock waits by what was waited for (`wait_event`: `transactionid`, `tuple`, `advisory`,
   * …), the first 60 characters of the waiting statement, and after `←` the state of the
   * first transaction blocking it and the start of the last statement that one ran.
   */
  lockOn: Record<string, number>;
}

/**
 * Samples `pg_stat_activity` for the connections to `url`'s database every `everyMs`, on its
 * own connection, until `stop()` — the profile that says whether claims queue behind a lock.
 * `stop(lastMs)` counts only the samples of the last `lastMs` (a run's measuring window).
 */
export async function waitSampler(
  url: string,
  everyMs = 20,
): Promise<{ stop(lastMs?: number): Promise<WaitSamples> }> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  const samples: Array<{ at: number } & WaitSamples> = [];
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
      const sample = {
        at: performance.now(),
        active: Number(r.rows[0]!.active),
        lock: Number(r.rows[0]!.lock),
        wal: Number(r.rows[0]!.wal),
        lockOn: {} as Record<string, number>,
      };
      if (sample.lock > 0) {
        // What the waiters wait for, and the start of the statement that waits.
        const on = await client.query<{ what: string; n: string }>(
          `select a.wait_event || ': ' || left(regexp_replace(a.query, '\\s+', ' ', 'g'), 60)
             || ' ← ' || coalesce((select b.state || ', last ran '
               || left(regexp_replace(b.query, '\\s+', ' ', 'g'), 40)
               from pg_stat_activity as b where b.pid = (pg_blocking_pids(a.pid))[1]
               limit 1), '?')
             as what, count(*) as n
           from pg_stat_activity as a where a.datname = current_database()
             and a.state = 'active' and a.wait_event_type = 'Lock'
             and a.pid <> pg_backend_pid() group by 1`,
        );
        for (const row of on.rows) sample.lockOn[row.what] = Number(row.n);
      }
      samples.push(sample);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    async stop(lastMs = Infinity) {
      running = false;
      await loop;
      await client.end().catch(() => undefined);
      const from = performance.now() - lastMs;
      const totals: WaitSamples = { active: 0, lock: 0, wal: 0, lockOn: {} };
      for (const s of samples) {
        if (s.at < from) continue;
        totals.active += s.active;
        totals.lock += s.lock;
        totals.wal += s.wal;
        for (const [what, n] of Object.entries(s.lockOn)) {
          totals.lockOn[what] = (totals.lockOn[what] ?? 0) + n;
        }
      }
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
