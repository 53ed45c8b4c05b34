import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { jobSubmissionSchema, type JobSubmissionInput } from '../../core/job-spec.js';
import { parseFrameList } from '../../core/frames.js';
import type { Job } from '../../core/types.js';
import { IDEMPOTENCY_KEY_TTL_MS, type IdempotencyKey, type Store } from '../contract.js';
import type { TestClock } from './harness.js';
import { register, submit, withFreshStore, type OpenStore } from './harness.js';

const DAY_MS = 24 * 60 * 60_000;

/** Submits with an idempotency key, as `Farm.submitJob` does. */
function submitOnce(
  store: Store,
  key: IdempotencyKey,
  input: Partial<JobSubmissionInput> = {},
): Promise<Job> {
  const sub = jobSubmissionSchema.parse({ plugin: 'CommandLine', frames: '1', ...input });
  return store.createJob(sub, parseFrameList(sub.frames), { idempotency: key });
}

/**
 * Bounded work per request (issue 10): large submissions in short transactions, idempotent
 * submission, the purge of deleted jobs' tasks. Runs against every backend.
 */
export function boundedWorkConformance(backend: string, open: OpenStore): void {
  describe(`store conformance: ${backend}: bounded work`, () => {
    let store: Store;
    let clock: TestClock;
    withFreshStore(open, (s, c) => {
      store = s;
      clock = c;
    });

    describe('large submissions', () => {
      it('answers other requests within a bounded delay while a 300,000-task job is created, and never shows it part made', async () => {
        const frames = 300_000;
        const loop = monitorEventLoopDelay({ resolution: 10 });
        loop.enable();
        let done = false;
        const creating = submit(store, {
          name: 'huge',
          frames: `1-${frames}`,
          chunkSize: 1,
        }).finally(() => {
          done = true;
        });
        const latencies: number[] = [];
        const seen: Array<{ taskCount: number; queued: number; lastTask: number }> = [];
        while (!done) {
          const started = performance.now();
          expect((await store.health()).ok).toBe(true);
          const jobs = await store.listJobs({ all: true });
          latencies.push(performance.now() - started);
          for (const job of jobs) {
            const last = await store.listTasks(job.id, { offset: frames - 1 });
            seen.push({
              taskCount: job.taskCount,
              queued: job.counts.queued,
              lastTask: last.length,
            });
          }
          await new Promise((r) => setTimeout(r, 10));
        }
        const job = await creating;
        loop.disable();
        expect(job.taskCount).toBe(frames);
        expect(job.counts.queued).toBe(frames);
        // Many requests were answered meanwhile, each quickly: one transaction holding
        // SQLite's connection for the whole insert made them wait seconds.
        expect(Math.max(...latencies)).toBeLessThan(400);
        expect(latencies.length).toBeGreaterThan(10);
        expect(loop.max / 1e6).toBeLessThan(400);
        // Whenever the job was visible, it was whole.
        for (const s of seen) expect(s).toEqual({ taskCount: frames, queued: frames, lastTask: 1 });
        const events = await store.listEvents({ jobId: job.id });
        expect(events.map((e) => e.type)).toEqual(['job.submitted']);
      }, 120_000);

      it('creates a staged job like any other: tasks, counters, dispatch, dependencies', async () => {
        const first = await submit(store, { name: 'first', frames: '1-3' });
        const big = await submit(store, {
          name: 'big',
          frames: '1-12000',
          chunkSize: 1,
          dependencies: [first.id],
        });
        expect(big).toMatchObject({ state: 'pending', taskCount: 12_000, frameCount: 12_000 });
        expect(big.counts.queued).toBe(12_000);
        expect(big.dependencies).toEqual([first.id]);
        const tail = await store.listTasks(big.id, { offset: 11_998 });
        expect(tail.map((t) => t.frames)).toEqual([[11_999], [12_000]]);

        const suspended = await submit(store, {
          frames: '1-6000',
          chunkSize: 1,
          initialState: 'suspended',
        });
        expect(suspended).toMatchObject({ state: 'suspended' });
        expect(suspended.counts.suspended).toBe(6000);

        await register(store, 'w1', { slots: 1 });
        const t = await store.claimTask('w1');
        expect(t?.jobId).toBe(first.id);
        await store.applyJobAction(first.id, 'suspend');
        expect(await store.claimTask('w1')).toBeUndefined();
      });

      it('refuses a staged job with a dependency that does not exist, and leaves nothing', async () => {
        const refused = submit(store, { frames: '1-6000', chunkSize: 1, dependencies: ['nope'] });
        await expect(refused).rejects.toMatchObject({ code: 'invalid_input' });
        await expect(refused).rejects.toThrow(/^dependencies/);
        expect(await store.listJobs({ all: true })).toEqual([]);
      });
    });

    describe('idempotency keys', () => {
      const key = (k: string, bodyHash = 'h1', owner = 'token-a'): IdempotencyKey => ({
        owner,
        key: k,
        bodyHash,
      });

      it('returns the first job for a retried submission with the same key', async () => {
        const a = await submitOnce(store, key('k1'), { name: 'shot' });
        const b = await submitOnce(store, key('k1'), { name: 'shot' });
        expect(b.id).toBe(a.id);
        expect(await store.listJobs({})).toHaveLength(1);
        expect((await store.listEvents({ types: ['job.submitted'] })).length).toBe(1);
        // Another principal's key of the same text is another key.
        const c = await submitOnce(store, key('k1', 'h1', 'token-b'), { name: 'shot' });
        expect(c.id).not.toBe(a.id);
      });

      it('refuses a key reused for a different submission, and changes nothing', async () => {
        const a = await submitOnce(store, key('k2', 'h1'));
        const refused = submitOnce(store, key('k2', 'h2'));
        await expect(refused).rejects.toMatchObject({ code: 'conflict' });
        await expect(refused).rejects.toThrow(a.id);
        expect(await store.listJobs({})).toHaveLength(1);
      });

      it('creates one job for two concurrent submissions with one key, small or staged', async () => {
        for (const frames of ['1-10', '1-8000']) {
          const k = key(`race-${frames}`);
          const [a, b] = await Promise.all([
            submitOnce(store, k, { frames, chunkSize: 1 }),
            submitOnce(store, k, { frames, chunkSize: 1 }),
          ]);
          expect(a.id).toBe(b.id);
          expect(a.taskCount).toBe(b.taskCount);
        }
        expect(await store.listJobs({})).toHaveLength(2);
      });

      it('forgets a key after 24 hours, and house keeping deletes it', async () => {
        const a = await submitOnce(store, key('k3'));
        clock.advance(IDEMPOTENCY_KEY_TTL_MS + 1);
        const b = await submitOnce(store, key('k3'));
        expect(b.id).not.toBe(a.id);
        const c = await submitOnce(store, key('k4'));
        clock.advance(IDEMPOTENCY_KEY_TTL_MS + 1);
        const purged = await store.purge({ deletedJobsAfterMs: 7 * DAY_MS });
        expect(purged.keys).toBe(2);
        expect((await submitOnce(store, key('k4'))).id).not.toBe(c.id);
      });
    });

    describe('deleted jobs', () => {
      it("shows a deleted job's unfinished tasks suspended, not queued", async () => {
        const job = await submit(store, { frames: '1-3' });
        await register(store, 'w1', { slots: 1 });
        const t = await store.claimTask('w1');
        await store.reportTask('w1', {
          lease: t!.lease,
          outcome: 'completed',
          exitCode: 0,
          message: '',
        });
        const u = await store.claimTask('w1');
        const deleted = await store.applyJobAction(job.id, 'delete');
        expect(deleted.counts).toMatchObject({
          queued: 0,
          rendering: 0,
          completed: 1,
          suspended: 2,
        });
        const tasks = await store.listTasks(job.id, {});
        expect(tasks.map((x) => x.state)).toEqual(['completed', 'suspended', 'suspended']);
        // The worker that held one learns its lease is gone.
        expect((await store.heartbeat('w1', { tasks: [{ lease: u!.lease }] })).revoked).toEqual([
          u!.lease,
        ]);
      });

      it('purges the tasks and logs of jobs deleted longer ago than asked, in bounded calls', async () => {
        const keep = await submit(store, { frames: '1-5', priority: 90 });
        const gone = await submit(store, { frames: '1-2500', chunkSize: 1 });
        await register(store, 'w1', { slots: 1 });
        const t = await store.claimTask('w1');
        expect(t?.jobId).toBe(keep.id);
        await store.appendTaskLog('w1', {
          lease: t!.lease,
          chunks: [{ stream: 'stdout', text: 'rendering frame 1\n' }],
        });
        const doomed = await store.claimTask('w1');
        expect(doomed).toBeUndefined(); // one slot
        await store.applyJobAction(gone.id, 'delete');

        // Not yet: deleted less than the purge delay ago.
        clock.advance(7 * DAY_MS - 1000);
        expect(await store.purge({ deletedJobsAfterMs: 7 * DAY_MS })).toMatchObject({
          tasks: 0,
          jobs: [],
          more: false,
        });
        expect(await store.listTasks(gone.id, { limit: 5 })).toHaveLength(5);

        clock.advance(2000);
        const first = await store.purge({ deletedJobsAfterMs: 7 * DAY_MS, maxRows: 1000 });
        expect(first).toMatchObject({ tasks: 1000, more: true, jobs: [] });
        let total = first.tasks;
        for (let i = 0; i < 10; i++) {
          const r = await store.purge({ deletedJobsAfterMs: 7 * DAY_MS, maxRows: 1000 });
          total += r.tasks;
          if (r.jobs.includes(gone.id)) break;
        }
        expect(total).toBe(2500);
        expect(await store.listTasks(gone.id, {})).toEqual([]);
        // The job row stays (history, dependencies), deleted; the live job is untouched.
        expect((await store.fetchJob(gone.id))?.state).toBe('deleted');
        expect(await store.listTasks(keep.id, {})).toHaveLength(5);
        expect((await store.readTaskLog(keep.id, 0, {})).chunks).toHaveLength(1);
        expect(await store.purge({ deletedJobsAfterMs: 7 * DAY_MS })).toMatchObject({
          tasks: 0,
          jobs: [],
        });
      });

      it("purges a deleted job's task logs too", async () => {
        const job = await submit(store, { frames: '1' });
        await register(store, 'w1');
        const t = await store.claimTask('w1');
        await store.appendTaskLog('w1', {
          lease: t!.lease,
          chunks: [
            { stream: 'stdout', text: 'a\n' },
            { stream: 'stderr', text: 'b\n' },
          ],
        });
        await store.applyJobAction(job.id, 'delete');
        clock.advance(DAY_MS + 1);
        const r = await store.purge({ deletedJobsAfterMs: DAY_MS });
        expect(r).toMatchObject({ logs: 2, tasks: 1, jobs: [job.id] });
        await expect(store.readTaskLog(job.id, 0, {})).rejects.toMatchObject({
          code: 'not_found',
        });
      });
    });
  });
}
