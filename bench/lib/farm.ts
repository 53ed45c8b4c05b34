import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { BenchConfig } from './config.js';
import { startManagerProcess, workerToken, type ManagerProcess } from './manager.js';
import { query, scratchDatabase } from './postgres.js';
import type { LogEvent } from './quality.js';

/** A store for one run: a SQLite file or a scratch PostgreSQL database. */
export interface BenchStore {
  kind: 'sqlite' | 'postgres';
  location: string;
  analyze(): Promise<void>;
  events(): Promise<LogEvent[]>;
  drop(): Promise<void>;
}

export async function benchStore(
  c: BenchConfig,
  kind: 'sqlite' | 'postgres',
  label: string,
): Promise<BenchStore> {
  if (kind === 'postgres') {
    const db = await scratchDatabase(label);
    return {
      kind,
      location: db.url,
      analyze: async () => void (await query(db.url, 'analyze')),
      events: async () => {
        // The run is over: every transaction has ended, so one publication round numbers
        // whatever no reader published yet (`src/store/sql/events.ts`).
        await query(db.url, 'select drover_publish_events(2147483647)');
        return (
          await query<{
            seq: string;
            at: string;
            type: string;
            job_id: string | null;
            worker: string | null;
          }>(
            db.url,
            'select seq, at, type, job_id, worker from events where seq is not null order by seq',
          )
        ).map((r) => ({
          seq: Number(r.seq),
          at: Number(r.at),
          type: r.type,
          jobId: r.job_id,
          worker: r.worker,
        }));
      },
      drop: () => db.drop(),
    };
  }
  const dir = await mkdtemp(join(c.tmp, `${label}-`));
  const file = join(dir, 'drover.db');
  return {
    kind,
    location: file,
    analyze: () => Promise.resolve(),
    events: () => {
      const db = new BetterSqlite3(file, { readonly: true });
      try {
        return Promise.resolve(
          (
            db
              .prepare('select seq, at, type, job_id, worker from events order by seq')
              .all() as Array<{
              seq: number;
              at: number;
              type: string;
              job_id: string | null;
              worker: string | null;
            }>
          ).map((r) => ({ seq: r.seq, at: r.at, type: r.type, jobId: r.job_id, worker: r.worker })),
        );
      } finally {
        db.close();
      }
    },
    drop: () => rm(dir, { recursive: true, force: true }),
  };
}

/** `count` manager processes on one store (one data folder: they share the admin token). */
export interface RunningFarm {
  managers: ManagerProcess[];
  first: ManagerProcess;
  token: string;
  stop(): Promise<void>;
}

export async function startFarm(
  c: BenchConfig,
  store: BenchStore,
  count: number,
): Promise<RunningFarm> {
  const dataDir = await mkdtemp(join(c.tmp, 'manager-'));
  const first = await startManagerProcess({ dataDir, db: store.location });
  const rest = await Promise.all(
    Array.from({ length: count - 1 }, () => startManagerProcess({ dataDir, db: store.location })),
  );
  const managers = [first, ...rest];
  return {
    managers,
    first,
    token: await workerToken(first),
    stop: async () => {
      await Promise.all(managers.map((m) => m.stop()));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
