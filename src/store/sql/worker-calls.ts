import { DroverError } from '../../core/errors.js';
import type { LogAppend, TaskReport } from '../../core/worker-protocol.js';
import type { WorkResult } from '../contract.js';
import * as dispatch from './dispatch.js';
import type { StoreKit } from './kit.js';
import { settleLockedJob } from './job-flow.js';
import { recordLeaseLoss } from './lease-loss.js';
import { appendLog } from './task-log.js';

/*
 * A worker's calls on its tasks as the store runs them (`SqlStore`'s dispatch family): each
 * one transaction, then the settling of the jobs it left for after COMMIT.
 */

/**
 * Runs a worker's call; when it is refused for a lease that is no longer current (which it
 * is before any write), runs `record` in the same transaction and returns the refusal for
 * the caller to throw after COMMIT, instead of rolling the record back with it.
 */
async function refusingLateCalls(
  call: () => Promise<void>,
  record: () => Promise<void>,
): Promise<DroverError | undefined> {
  try {
    await call();
    return undefined;
  } catch (err) {
    if (!(err instanceof DroverError && err.code === 'lease_lost')) throw err;
    await record();
    return err;
  }
}

export async function reportTask(kit: StoreKit, workerName: string, r: TaskReport): Promise<void> {
  // A refused report changes nothing but is recorded (`recordLeaseLoss`); the refusal
  // reaches the caller after that record commits.
  let settle: readonly string[] = [];
  const refused = await kit.tx((db, now) =>
    refusingLateCalls(
      async () => {
        ({ settleAfterCommit: settle } = await dispatch.report(db, kit.kind, now, workerName, r));
      },
      () =>
        recordLeaseLoss(db, kit.kind, now, workerName, r.lease, {
          kind: 'report',
          outcome: r.outcome,
        }),
    ),
  );
  await settleJobs(kit, settle);
  if (refused) throw refused;
}

/**
 * A worker's report on the task it finished and its claim of the next one, in one
 * transaction: one round trip and one commit per task (DESIGN.md: ≈1.6× the throughput of
 * separate calls). A refused report does not stop the claim.
 */
export async function work(
  kit: StoreKit,
  workerName: string,
  r: TaskReport | undefined,
  wantTask: boolean,
): Promise<WorkResult> {
  const { settleAfterCommit, ...result } = await kit.tx(
    (db, now) =>
      dispatch.work(db, kit.kind, now, workerName, r, wantTask, { leaseTtlMs: kit.leaseTtlMs }),
    // A claim alone makes no work dispatchable; a report may (slots, limits, dependents).
    { wakes: r !== undefined },
  );
  await settleJobs(kit, settleAfterCommit);
  return result;
}

export async function appendTaskLog(
  kit: StoreKit,
  workerName: string,
  append: LogAppend,
): Promise<void> {
  const refused = await kit.tx(
    (db, now) =>
      refusingLateCalls(
        () => appendLog(db, kit.kind, now, workerName, append),
        () => recordLeaseLoss(db, kit.kind, now, workerName, append.lease, { kind: 'log' }),
      ),
    { wakes: false },
  );
  if (refused) throw refused;
}

/**
 * PostgreSQL: moves the jobs a committed call completed tasks of without its turn, when
 * their state lags their counters (`dispatch.ts`). The call itself has committed, so a
 * failure here is not its failure: house keeping settles the job within a round.
 */
async function settleJobs(kit: StoreKit, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    try {
      if (await dispatch.lagsCounters(kit.db, id)) {
        await kit.tx((db, now) => settleLockedJob(db, kit.kind, now, id));
      }
    } catch {
      // Left to house keeping (`settleIdleRendering`).
    }
  }
}
