import type { Kysely } from 'kysely';
import type { Worker } from '../../core/types.js';
import type { Heartbeat, HeartbeatReply, WorkerRegistration } from '../../core/worker-protocol.js';
import type { Dialect } from './dialect.js';
import {
  fetchWorkerRow,
  requeueWorkerTasks,
  runningCount,
  setWorkerState,
  touchWorker,
} from './task-ends.js';
import { recordEvent } from './events.js';
import { num, workerFromRow } from './rows.js';
import type { Database } from './schema.js';

/**
 * Workers: registration, heartbeats, enabling and stopping. Each write runs inside a store
 * transaction (`db` is that transaction); what a worker claims and reports is `dispatch.ts`.
 */

/** Registers a worker, or re-registers one that restarted (whatever it held is requeued). */
export async function register(
  db: Kysely<Database>,
  dialect: Dialect,
  now: number,
  reg: WorkerRegistration,
): Promise<void> {
  const existing = await db
    .selectFrom('workers')
    .select('name')
    .where('name', '=', reg.name)
    .executeTakeFirst();
  const values = {
    region: reg.region,
    pools: JSON.stringify(reg.pools),
    groups: JSON.stringify(reg.groups),
    slots: reg.slots,
    capabilities: JSON.stringify(reg.capabilities),
    state: 'idle',
    version: reg.version,
    apps: JSON.stringify(reg.apps ?? []),
    last_seen_at: now,
  };
  if (existing) {
    await db.updateTable('workers').set(values).where('name', '=', reg.name).execute();
    // A worker that registers again has restarted: whatever it held is gone with it.
    await requeueWorkerTasks(db, dialect, now, reg.name, 'worker restarted');
  } else {
    await db
      .insertInto('workers')
      .values({ name: reg.name, enabled: 1, registered_at: now, ...values })
      .execute();
  }
  await recordEvent(db, now, {
    type: 'worker.started',
    worker: reg.name,
    data: {
      region: reg.region,
      pools: reg.pools,
      groups: reg.groups,
      slots: reg.slots,
      ...(reg.apps?.length ? { apps: reg.apps } : {}),
    },
  });
}

/**
 * A heartbeat: extends the leases of the tasks the worker says it runs (by `leaseTtlMs`),
 * and names those it no longer holds (revoked); a stalled or offline worker is back.
 */
export async function heartbeat(
  db: Kysely<Database>,
  now: number,
  name: string,
  hb: Heartbeat,
  leaseTtlMs: number,
): Promise<Omit<HeartbeatReply, 'heartbeatIntervalMs'>> {
  const worker = await touchWorker(db, name, now);
  const revoked: string[] = [];
  for (const t of hb.tasks) {
    const set: Record<string, unknown> = { lease_expires_at: now + leaseTtlMs };
    if (t.progress !== undefined) set.progress = t.progress;
    if (t.status !== undefined) set.status = t.status;
    const r = await db
      .updateTable('tasks')
      .set(set)
      .where('lease', '=', t.lease)
      .where('worker', '=', name)
      .where('state', '=', 'rendering')
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) revoked.push(t.lease);
  }
  const running = await runningCount(db, name);
  const state = running > 0 ? 'rendering' : 'idle';
  if (worker.state !== state) {
    if (worker.state === 'stalled' || worker.state === 'offline') {
      await recordEvent(db, now, {
        type: 'worker.started',
        worker: name,
        data: { reason: 'heartbeat resumed' },
      });
    }
    await setWorkerState(db, now, worker, state);
  }
  return { revoked, enabled: num(worker.enabled) === 1 };
}

export async function fetch(db: Kysely<Database>, name: string): Promise<Worker | undefined> {
  const row = await db
    .selectFrom('workers')
    .selectAll()
    .where('name', '=', name)
    .executeTakeFirst();
  if (!row) return undefined;
  const running = await db
    .selectFrom('tasks')
    .select(['job_id', 'idx'])
    .where('worker', '=', name)
    .where('state', '=', 'rendering')
    .execute();
  return workerFromRow(
    row,
    running.map((t) => `${t.job_id}:${num(t.idx)}`),
  );
}

/** Every worker, by region and name, with the tasks each is rendering. */
export async function list(db: Kysely<Database>): Promise<Worker[]> {
  const rows = await db
    .selectFrom('workers')
    .selectAll()
    .orderBy('region')
    .orderBy('name')
    .execute();
  const running = await db
    .selectFrom('tasks')
    .select(['worker', 'job_id', 'idx'])
    .where('state', '=', 'rendering')
    .execute();
  // Grouped once: matching each worker against every running task grew as workers × tasks
  // (≈100M steps at 10,000 workers, on every monitor refresh and metrics scrape).
  const byWorker = new Map<string, string[]>();
  for (const t of running) {
    if (t.worker === null) continue;
    const held = byWorker.get(t.worker);
    const id = `${t.job_id}:${num(t.idx)}`;
    if (held) held.push(id);
    else byWorker.set(t.worker, [id]);
  }
  return rows.map((r) => workerFromRow(r, byWorker.get(r.name) ?? []));
}

export async function setEnabled(
  db: Kysely<Database>,
  now: number,
  name: string,
  enabled: boolean,
): Promise<void> {
  await fetchWorkerRow(db, name);
  await db
    .updateTable('workers')
    .set({ enabled: enabled ? 1 : 0 })
    .where('name', '=', name)
    .execute();
  await recordEvent(db, now, { type: 'worker.updated', worker: name, data: { enabled } });
}

/** A worker that says it stops: what it held is requeued and it is offline. */
export async function markStopped(
  db: Kysely<Database>,
  dialect: Dialect,
  now: number,
  name: string,
): Promise<void> {
  await touchWorker(db, name, now);
  await requeueWorkerTasks(db, dialect, now, name, 'worker stopped');
  await db.updateTable('workers').set({ state: 'offline' }).where('name', '=', name).execute();
  await recordEvent(db, now, { type: 'worker.stopped', worker: name, data: {} });
}
