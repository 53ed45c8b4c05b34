import { setTimeout as sleep } from 'node:timers/promises';
import { DroverError } from '../../core/errors.js';
import type { JobSubmission, TaskState } from '../../core/job-spec.js';
import type { Job } from '../../core/types.js';
import { IDEMPOTENCY_KEY_TTL_MS, type CreateJobOptions, type IdempotencyKey } from '../contract.js';
import { newJobId } from './ids.js';
import { fetchJob } from './job-store.js';
import {
  TASK_INSERT_BATCH,
  checkDependencies,
  initialTaskState,
  insertJob,
  insertJobRow,
  insertTasks,
  taskCountOf,
} from './jobs.js';
import { yieldToEventLoop, type StoreKit } from './kit.js';
import {
  abandonCreation,
  creationAbandoned,
  creationState,
  finishCreation,
  releaseKey,
  reserveKey,
  startCreation,
  touchCreation,
} from './staging.js';

/** Jobs with more tasks than this are created in stages (see `createJob`). */
export const STAGE_ABOVE_TASKS = 5000;
/**
 * How long one staging transaction inserts batches before it commits and yields: well inside
 * the ≈100 ms a request may wait. A 1,000-row INSERT took ≈3 ms in raw SQLite here and
 * ≈10–20 ms through Kysely with row building.
 */
const STAGE_SLICE_MS = 50;
/** How long a retried submission waits for the first one's staged creation to finish. */
const PRIOR_WAIT_MS = 20_000;
const PRIOR_POLL_MS = 100;

/**
 * A job of up to `STAGE_ABOVE_TASKS` tasks is created in one transaction. A larger one is
 * staged (`staging.ts`): its tasks go in batch by batch, each batch a transaction of about
 * `STAGE_SLICE_MS`, yielding to the event loop between them, and the job row comes last.
 * On SQLite every query waits for the one connection, so one transaction holding it for
 * seconds stalled every request: a 1,000,000-task job held it 9–17 s.
 */
export async function createJob(
  kit: StoreKit,
  submission: JobSubmission,
  frames: readonly number[],
  options: CreateJobOptions = {},
): Promise<Job> {
  const taskCount = taskCountOf(frames, submission.chunkSize);
  const staged = taskCount > STAGE_ABOVE_TASKS;
  const key = options.idempotency;
  for (let round = 1; ; round++) {
    const id = newJobId(kit.now());
    const first = await kit.tx(
      async (db, now) => {
        if (key) {
          const prior = await reserveKey(db, now, IDEMPOTENCY_KEY_TTL_MS, key, id);
          if (prior !== undefined) return { prior };
        }
        if (!staged) {
          await insertJob(db, kit.kind, now, submission, frames, options, id);
          return {};
        }
        await checkDependencies(db, kit.kind, submission);
        const taskState = await initialTaskState(db, submission);
        await startCreation(db, now, id);
        return { taskState };
      },
      { wakes: !staged },
    );
    if (first.prior !== undefined && key) {
      const job = await priorJob(kit, first.prior, key);
      if (job) return job;
      // Its creation was abandoned and the key released: this submission makes the job.
      if (round >= 3) throw creationAbandoned(first.prior);
      continue;
    }
    if (first.taskState !== undefined) {
      await stageJob(kit, id, submission, frames, options, taskCount, first.taskState);
    }
    return (await fetchJob(kit, id))!;
  }
}

async function stageJob(
  kit: StoreKit,
  id: string,
  submission: JobSubmission,
  frames: readonly number[],
  options: CreateJobOptions,
  taskCount: number,
  taskState: TaskState,
): Promise<void> {
  try {
    for (let next = 0; next < taskCount;) {
      next = await kit.tx(
        async (db, now) => {
          await touchCreation(db, now, id);
          const started = performance.now();
          let i = next;
          do {
            const to = Math.min(i + TASK_INSERT_BATCH, taskCount);
            await insertTasks(db, id, frames, submission.chunkSize, i, to, taskState);
            i = to;
          } while (i < taskCount && performance.now() - started < STAGE_SLICE_MS);
          return i;
        },
        { wakes: false },
      );
      // Requests that arrived meanwhile get the connection before the next batch.
      await yieldToEventLoop();
    }
    await kit.tx(async (db, now) => {
      await finishCreation(db, id);
      await checkDependencies(db, kit.kind, submission);
      await insertJobRow(db, kit.kind, now, id, submission, frames, options, taskState);
    });
  } catch (err) {
    // Nothing was created: house keeping deletes the tasks inserted so far.
    await kit.tx((db) => abandonCreation(db, id), { wakes: false }).catch(() => undefined);
    throw err;
  }
}

/**
 * The job an earlier submission with the same idempotency key created; waits (polling, up
 * to `PRIOR_WAIT_MS`) while its staged creation is under way. Undefined when that creation
 * was abandoned: the key is released and the caller creates the job itself.
 */
async function priorJob(
  kit: StoreKit,
  jobId: string,
  key: IdempotencyKey,
): Promise<Job | undefined> {
  const deadline = performance.now() + PRIOR_WAIT_MS;
  for (;;) {
    const job = await fetchJob(kit, jobId);
    if (job) return job;
    const state = await creationState(kit.db, kit.now(), jobId);
    if (state !== 'running') {
      // The creation may have finished between the two reads: look once more.
      const done = await fetchJob(kit, jobId);
      if (done) return done;
      await kit.tx(
        async (db) => {
          if (state === 'abandoned') await abandonCreation(db, jobId);
          await releaseKey(db, key, jobId);
        },
        { wakes: false },
      );
      return undefined;
    }
    if (performance.now() > deadline) {
      throw new DroverError(
        'unavailable',
        `job ${jobId}, submitted earlier with Idempotency-Key "${key.key}", is still being created; try again shortly`,
      );
    }
    await sleep(PRIOR_POLL_MS);
  }
}
