import { describe, expect, it } from 'vitest';
import type { Store } from '../contract.js';
import { register, submit, withFreshStore, type OpenStore, type TestClock } from './harness.js';

/**
 * Commands on chosen tasks (`Store.commandTasks`, Deadline's task commands and its job
 * `complete`): tasks move, rendering ones are stopped and their limits freed, and the job
 * follows as if its tasks had got there by themselves. Runs against every backend.
 */
export function taskCommandsConformance(backend: string, open: OpenStore): void {
  describe(`store conformance: ${backend}: commands on chosen tasks`, () => {
    let store: Store;
    let clock: TestClock;
    withFreshStore(open, (s, c) => {
      store = s;
      clock = c;
    });

    const states = async (id: string) =>
      (await store.listTasks(id, {})).map((t) => `${t.index}:${t.state}`);

    it('suspends chosen tasks (a rendering one stopped, its limit freed) and resumes them', async () => {
      await store.setLimit('lic', 1);
      await register(store, 'w1');
      const job = await submit(store, { frames: '1-3', limits: ['lic'] });
      const claimed = await store.claimTask('w1');
      expect(claimed?.taskIndex).toBe(0);
      await store.commandTasks(job.id, [0, 1], 'suspend');
      expect(await states(job.id)).toEqual(['0:suspended', '1:suspended', '2:queued']);
      expect((await store.listLimits()).find((l) => l.name === 'lic')?.inUse).toBe(0);
      expect((await store.fetchWorker('w1'))?.runningTasks).toEqual([]);
      // The lease of the stopped task is no longer current.
      await expect(
        store.reportTask('w1', {
          lease: claimed!.lease,
          outcome: 'completed',
          exitCode: 0,
          message: '',
        }),
      ).rejects.toMatchObject({ code: 'lease_lost' });
      expect((await store.claimTask('w1'))?.taskIndex).toBe(2);
      const resumed = await store.commandTasks(job.id, [1], 'resume');
      expect(resumed.map((t) => t.state)).toEqual(['queued']);
      expect((await store.fetchJob(job.id))?.counts).toMatchObject({
        suspended: 1,
        queued: 1,
        rendering: 1,
      });
    });

    it('resuming tasks of a suspended job makes the job active again', async () => {
      const job = await submit(store, { frames: '1-2', initialState: 'suspended' });
      await store.commandTasks(job.id, 'all', 'resume');
      expect((await store.fetchJob(job.id))?.state).toBe('queued');
      expect(await states(job.id)).toEqual(['0:queued', '1:queued']);
    });

    it('completing every task completes the job and releases the jobs waiting for it', async () => {
      await register(store, 'w1');
      const job = await submit(store, { frames: '1-3' });
      const dependent = await submit(store, { dependencies: [job.id] });
      expect((await store.fetchJob(dependent.id))?.state).toBe('pending');
      await store.claimTask('w1');
      await store.commandTasks(job.id, [1], 'complete');
      expect((await store.fetchJob(job.id))?.state).toBe('rendering');
      await store.commandTasks(job.id, 'all', 'complete');
      const done = await store.fetchJob(job.id);
      expect(done?.state).toBe('completed');
      expect(done?.counts.completed).toBe(3);
      expect((await store.fetchJob(dependent.id))?.state).toBe('queued');
      const events = await store.listEvents({ jobId: job.id });
      expect(events.map((e) => e.type)).toContain('job.finished');
    });

    it('failing a task fails the job, as when a task runs out of retries', async () => {
      const job = await submit(store, { frames: '1-3' });
      await store.commandTasks(job.id, [2], 'fail');
      const failed = await store.fetchJob(job.id);
      expect(failed?.state).toBe('failed');
      expect(await states(job.id)).toEqual(['0:queued', '1:queued', '2:failed']);
      // Completing the rest and the failed one finishes it after all.
      await store.commandTasks(job.id, 'all', 'complete');
      expect((await store.fetchJob(job.id))?.state).toBe('completed');
    });

    it('undeletes a deleted job while its tasks are there: suspended, then it renders', async () => {
      await register(store, 'w1');
      const job = await submit(store, { frames: '1-2' });
      const dependent = await submit(store, { dependencies: [job.id] });
      await store.claimTask('w1');
      await store.applyJobAction(job.id, 'delete');
      expect((await store.fetchJob(dependent.id))?.pendingReason).toMatch(/deleted/);
      const back = await store.undeleteJob(job.id);
      expect(back.state).toBe('suspended');
      expect(back.counts.suspended).toBe(2);
      expect((await store.fetchJob(dependent.id))?.pendingReason).not.toMatch(/deleted/);
      await store.applyJobAction(job.id, 'resume');
      expect((await store.claimTask('w1'))?.jobId).toBe(job.id);
      await expect(store.undeleteJob(job.id)).rejects.toMatchObject({ code: 'conflict' });
      await expect(store.undeleteJob('000000000000000000000000')).rejects.toMatchObject({
        code: 'not_found',
      });
    });

    it('does not undelete a job whose tasks were purged', async () => {
      const job = await submit(store, { frames: '1-2' });
      await store.applyJobAction(job.id, 'delete');
      clock.advance(1000);
      while ((await store.purge({ deletedJobsAfterMs: 0 })).more);
      expect((await store.listTasks(job.id, {})).length).toBe(0);
      await expect(store.undeleteJob(job.id)).rejects.toMatchObject({ code: 'conflict' });
      expect((await store.fetchJob(job.id))?.state).toBe('deleted');
    });

    it('refuses unknown tasks and finished jobs, changing nothing', async () => {
      const job = await submit(store, { frames: '1-2' });
      const before = await states(job.id);
      const eventsBefore = (await store.listEvents({ jobId: job.id })).length;
      await expect(store.commandTasks(job.id, [0, 5], 'complete')).rejects.toMatchObject({
        code: 'invalid_input',
      });
      await expect(
        store.commandTasks('000000000000000000000000', [0], 'fail'),
      ).rejects.toMatchObject({ code: 'not_found' });
      expect(await states(job.id)).toEqual(before);
      expect((await store.listEvents({ jobId: job.id })).length).toBe(eventsBefore);
      await store.applyJobAction(job.id, 'delete');
      await expect(store.commandTasks(job.id, [0], 'resume')).rejects.toMatchObject({
        code: 'conflict',
      });
    });
  });
}
