import type { Kysely } from 'kysely';
import { IDEMPOTENCY_KEY_TTL_MS, type PurgeOptions, type PurgeResult } from '../contract.js';
import { recordEvent } from './events.js';
import { settleIdleRendering } from './job-flow.js';
import { yieldToEventLoop, type StoreKit } from './kit.js';
import { num } from './rows.js';
import type { Database } from './schema.js';
import {
  abandonStaleCreations,
  deleteExpiredKeys,
  deleteLogBatch,
  deleteTaskBatch,
  deletedJobsToPurge,
  dropCreation,
  markJobPurged,
  nextAbandonedCreation,
} from './staging.js';
import { requeueExpired, requeueWorkerTasks } from './task-ends.js';

/* House keeping: stalled workers and expired leases (`expireLeases`), and `purge`. */

/** Rows one purge transaction deletes at most, and rows one `purge` call deletes at most. */
const PURGE_BATCH = 2000;
const PURGE_MAX_ROWS = 10_000;
/** Deleted jobs one `purge` call looks at. */
const PURGE_JOBS_PER_CALL = 20;

export async function expireLeases(
  kit: StoreKit,
  stallAfterMs: number,
): Promise<{ requeued: number; stalled: string[] }> {
  return kit.tx(async (db, now) => {
    let requeued = 0;
    const stalled: string[] = [];
    const silent = await db
      .selectFrom('workers')
      .selectAll()
      .where('state', 'in', ['idle', 'rendering'])
      .where('last_seen_at', '<', now - stallAfterMs)
      .execute();
    for (const w of silent) {
      await db
        .updateTable('workers')
        .set({ state: 'stalled' })
        .where('name', '=', w.name)
        .execute();
      await recordEvent(db, now, {
        type: 'worker.stalled',
        worker: w.name,
        data: { lastSeenAt: num(w.last_seen_at) },
      });
      stalled.push(w.name);
      requeued += await requeueWorkerTasks(db, kit.kind, now, w.name, 'worker stalled');
    }
    requeued += await requeueExpired(db, kit.kind, now);
    await settleIdleRendering(db, kit.kind, now);
    return { requeued, stalled };
  });
}

export async function purge(kit: StoreKit, options: PurgeOptions): Promise<PurgeResult> {
  const budget = options.maxRows ?? PURGE_MAX_ROWS;
  const out: PurgeResult = { tasks: 0, logs: 0, jobs: [], creations: 0, keys: 0, more: false };
  const left = () => budget - out.tasks - out.logs - out.keys;
  const batch = () => Math.max(1, Math.min(PURGE_BATCH, left()));
  const run = <T>(fn: (db: Kysely<Database>, now: number) => Promise<T>) =>
    kit.tx(fn, { wakes: false });

  // Creations whose manager died: their tasks, then the creation row.
  await run((db, now) => abandonStaleCreations(db, now));
  for (;;) {
    if (left() <= 0) return { ...out, more: true };
    const id = await run((db) => nextAbandonedCreation(db));
    if (id === undefined) break;
    const n = await run((db) => deleteTaskBatch(db, id, batch()));
    out.tasks += n;
    if (n === 0) {
      await run((db) => dropCreation(db, id));
      out.creations++;
    }
    await yieldToEventLoop();
  }

  // Deleted jobs, `deletedJobsAfterMs` after deletion: logs, then tasks, then the mark.
  const due = await run((db, now) =>
    deletedJobsToPurge(db, now - options.deletedJobsAfterMs, PURGE_JOBS_PER_CALL),
  );
  for (const id of due) {
    for (;;) {
      if (left() <= 0) return { ...out, more: true };
      const logs = await run((db) => deleteLogBatch(db, id, batch()));
      out.logs += logs;
      const tasks = logs > 0 ? 0 : await run((db) => deleteTaskBatch(db, id, batch()));
      out.tasks += tasks;
      await yieldToEventLoop();
      if (logs === 0 && tasks === 0) break;
    }
    await run((db, now) => markJobPurged(db, now, id));
    out.jobs.push(id);
  }

  if (left() <= 0) return { ...out, more: true };
  out.keys += await run((db, now) => deleteExpiredKeys(db, now - IDEMPOTENCY_KEY_TTL_MS, batch()));
  out.more = due.length === PURGE_JOBS_PER_CALL || left() <= 0;
  return out;
}
