import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';

/**
 * The raw SQL ceiling of scenario 1: the least a claim+complete cycle can be on Drover's own
 * schema, in plain SQL, with nothing of Drover around it — no job counters, no events, no
 * worker rows, no limits, no scheduling policy beyond "the lowest queued task of the job".
 * One cycle completes the task the loop holds (checking its lease) and claims the next, as
 * `store.work(worker, report, true)` does, in one transaction:
 *
 * - SQLite (better-sqlite3, WAL, synchronous=NORMAL and the checkpoint interval of Drover's
 *   store): three prepared statements in one transaction, one loop.
 * - PostgreSQL (pg): one statement (two data-modifying CTEs, `FOR UPDATE SKIP LOCKED`), named so
 *   it is prepared once per connection — one round trip and one transaction per cycle; one
 *   loop per connection, each on its own connection.
 *
 * The tasks are those of a job Drover's store created (`store.createJob`), so the rows and
 * indexes are the ones Drover's own figures run on.
 */

export interface Window {
  /** performance.now() at which counting starts, and at which the loops stop. */
  from: number;
  until: number;
}

export interface RawResult {
  cycles: number;
  /** When a loop found no queued task (the job drained before the window ended). */
  drainedAt: number | undefined;
}

const LEASE_MS = 60_000;

export function rawSqliteLoop(file: string, jobId: string, w: Window): RawResult {
  const db = new BetterSqlite3(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('wal_autocheckpoint = 10000');
    const complete = db.prepare(
      `update tasks set state = 'completed', worker = null, lease = null, lease_expires_at = null,
         finished_at = ? where job_id = ? and idx = ? and lease = ? and state = 'rendering'`,
    );
    const next = db.prepare(
      `select idx from tasks where job_id = ? and state = 'queued' order by idx limit 1`,
    );
    const claim = db.prepare(
      `update tasks set state = 'rendering', worker = ?, lease = ?, lease_expires_at = ?,
         attempt = attempt + 1, started_at = ? where job_id = ? and idx = ?`,
    );
    let held: { idx: number; lease: string } | undefined;
    let n = 0;
    const cycle = db.transaction(() => {
      const now = Date.now();
      let completed = false;
      if (held) {
        const r = complete.run(now, jobId, held.idx, held.lease);
        if (r.changes !== 1) throw new Error('raw SQLite loop: the lease was lost');
        completed = true;
      }
      const row = next.get(jobId) as { idx: number } | undefined;
      if (!row) return { completed, task: undefined };
      const lease = `raw-${++n}`;
      claim.run('raw-0', lease, now + LEASE_MS, now, jobId, row.idx);
      return { completed, task: { idx: row.idx, lease } };
    });
    let cycles = 0;
    for (;;) {
      const t0 = performance.now();
      if (t0 >= w.until) return { cycles, drainedAt: undefined };
      const r = cycle();
      const t = performance.now();
      if (r.completed && t >= w.from && t < w.until) cycles++;
      held = r.task;
      if (!held) return { cycles, drainedAt: t };
    }
  } finally {
    db.close();
  }
}

const PG_CYCLE = `
with done as (
  update tasks set state = 'completed', worker = null, lease = null, lease_expires_at = null,
    finished_at = $3
  where job_id = $1 and idx = $4 and lease = $5 and state = 'rendering'
  returning idx
), next as (
  select idx from tasks
  where job_id = $1 and state = 'queued'
  order by idx
  limit 1
  for update skip locked
)
update tasks t set state = 'rendering', worker = $2, lease = $6,
  lease_expires_at = $3 + ${LEASE_MS}, attempt = t.attempt + 1, started_at = $3
from next
where t.job_id = $1 and t.idx = next.idx
returning t.idx, (select count(*) from done)::int as completed`;

/**
 * Runs one cycle statement again when PostgreSQL picked it as a deadlock's victim (it rolled
 * back whole, so the lease it completes is still held). A rare one is possible even in this
 * minimal loop: \`FOR UPDATE SKIP LOCKED\` may keep the lock of a row it locked and then found
 * no longer queued (another loop's rendering task), and that loop's completion then waits
 * for it. Drover's store retries deadlocks the same way (\`retryDelayMs\`).
 */
async function deadlockRetried<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if ((err as { code?: string }).code !== '40P01' || attempt >= 5) throw err;
    }
  }
}

export async function rawPostgresLoops(
  url: string,
  jobId: string,
  connections: number,
  w: Window,
): Promise<RawResult> {
  const clients = Array.from({ length: connections }, () => {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => undefined);
    return c;
  });
  await Promise.all(clients.map((c) => c.connect()));
  let cycles = 0;
  let drainedAt: number | undefined;
  try {
    await Promise.all(
      clients.map(async (client, loop) => {
        let held: { idx: number; lease: string } | undefined;
        let n = 0;
        while (performance.now() < w.until && drainedAt === undefined) {
          const lease = `raw-${loop}-${++n}`;
          const r = await deadlockRetried(() =>
            client.query<{ idx: number; completed: number }>({
              name: 'raw-cycle',
              text: PG_CYCLE,
              values: [jobId, `raw-${loop}`, Date.now(), held?.idx ?? -1, held?.lease ?? '', lease],
            }),
          );
          const t = performance.now();
          // A cycle that claims nothing completes nothing either (the statement's result is
          // the claim's rows): the last completion of a drained job is not counted.
          const row = r.rows[0];
          if (held && row?.completed !== 1 && row !== undefined) {
            throw new Error('raw PostgreSQL loop: the lease was lost');
          }
          if (held && row && t >= w.from && t < w.until) cycles++;
          held = row ? { idx: Number(row.idx), lease } : undefined;
          if (!held) drainedAt = t;
        }
      }),
    );
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
  return { cycles, drainedAt };
}
