import { beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../contract.js';
import { register, submit, withFreshStore, type OpenStore } from './harness.js';

/**
 * What a submission promises (issue 10): a dependency that cannot complete is named in the
 * dependent's pending reason (Deadline's ResumeOnFailedDependencies /
 * ResumeOnDeletedDependencies decide whether it counts as done), and the frame list is kept
 * as it was sent. Runs against every backend.
 */
export function submissionRulesConformance(backend: string, open: OpenStore): void {
  describe(`store conformance: ${backend}: submission rules`, () => {
    let store: Store;
    withFreshStore(open, (s) => {
      store = s;
    });

    /** Claims the job's only task and reports it failed (taskRetries 0: the job fails). */
    async function failByWorker(jobId: string): Promise<void> {
      const t = await store.claimTask('w1');
      expect(t?.jobId).toBe(jobId);
      await store.reportTask('w1', {
        lease: t!.lease,
        outcome: 'failed',
        exitCode: 1,
        message: 'x',
      });
      expect((await store.fetchJob(jobId))?.state).toBe('failed');
    }
    async function completeByWorker(jobId: string): Promise<void> {
      const t = await store.claimTask('w1');
      expect(t?.jobId).toBe(jobId);
      await store.reportTask('w1', {
        lease: t!.lease,
        outcome: 'completed',
        exitCode: 0,
        message: '',
      });
    }
    async function pendedReasons(jobId: string): Promise<string[]> {
      return (await store.listEvents({ jobId }))
        .filter((e) => e.type === 'job.pended')
        .map((e) => String(e.data.reason));
    }

    describe('dependencies that cannot complete', () => {
      beforeEach(async () => {
        await register(store, 'w1');
      });

      it('names a dependency that failed in the pending reason and the event log', async () => {
        const render = await submit(store, { name: 'render', taskRetries: 0 });
        const publish = await submit(store, { name: 'publish', dependencies: [render.id] });
        expect(publish.pendingReason).toBe('waiting for dependencies');
        await failByWorker(render.id);
        const after = await store.fetchJob(publish.id);
        const reason = `dependency ${render.id} failed and cannot complete (resumeOnFailedDependencies is off)`;
        expect(after).toMatchObject({ state: 'pending', pendingReason: reason });
        expect(await pendedReasons(publish.id)).toEqual(['waiting for dependencies', reason]);
        expect(await store.claimTask('w1')).toBeUndefined();
      });

      it('says so at submission when the dependency has failed already', async () => {
        const render = await submit(store, { name: 'render' });
        await store.applyJobAction(render.id, 'fail');
        const publish = await submit(store, { dependencies: [render.id] });
        expect(publish.state).toBe('pending');
        expect(publish.pendingReason).toMatch(
          new RegExp(`^dependency ${render.id} failed and cannot complete`),
        );
        expect(await pendedReasons(publish.id)).toEqual([publish.pendingReason]);
      });

      it('releases a job that resumes on failed dependencies when its dependency fails', async () => {
        const render = await submit(store, { name: 'render', taskRetries: 0 });
        const publish = await submit(store, {
          dependencies: [render.id],
          resumeOnFailedDependencies: true,
        });
        expect(publish).toMatchObject({ state: 'pending', resumeOnFailedDependencies: true });
        await failByWorker(render.id);
        expect((await store.fetchJob(publish.id))?.state).toBe('queued');
        const t = await store.claimTask('w1');
        expect(t?.jobId).toBe(publish.id);
        // Submitted after the failure, it does not wait at all.
        const late = await submit(store, {
          dependencies: [render.id],
          resumeOnFailedDependencies: true,
        });
        expect(late.state).toBe('queued');
      });

      it('names a dependency deleted before it completed; resumeOnDeletedDependencies releases', async () => {
        const render = await submit(store, { name: 'render' });
        const waits = await submit(store, { dependencies: [render.id] });
        const resumes = await submit(store, {
          dependencies: [render.id],
          resumeOnDeletedDependencies: true,
        });
        const ignoresFailures = await submit(store, {
          dependencies: [render.id],
          resumeOnFailedDependencies: true,
        });
        await store.applyJobAction(render.id, 'delete');
        const reason = `dependency ${render.id} was deleted before it completed and cannot complete (resumeOnDeletedDependencies is off)`;
        expect(await store.fetchJob(waits.id)).toMatchObject({
          state: 'pending',
          pendingReason: reason,
        });
        expect(await pendedReasons(waits.id)).toContain(reason);
        expect((await store.fetchJob(resumes.id))?.state).toBe('queued');
        expect((await store.fetchJob(ignoresFailures.id))?.pendingReason).toBe(reason);
      });

      it('treats an archived unfinished dependency as deleted', async () => {
        const render = await submit(store, { name: 'render' });
        const waits = await submit(store, { dependencies: [render.id] });
        await store.applyJobAction(render.id, 'archive');
        expect((await store.fetchJob(waits.id))?.pendingReason).toMatch(
          /was archived before it completed and cannot complete \(resumeOnDeletedDependencies is off\)/,
        );
      });

      it('counts a dependency that completed and was deleted afterwards as done', async () => {
        const render = await submit(store, { name: 'render', onComplete: 'delete' });
        await completeByWorker(render.id);
        expect((await store.fetchJob(render.id))?.state).toBe('deleted');
        expect((await submit(store, { dependencies: [render.id] })).state).toBe('queued');
      });

      it('waits again when the failed dependency is requeued, and is released when it completes', async () => {
        const render = await submit(store, { name: 'render', taskRetries: 0 });
        const publish = await submit(store, { dependencies: [render.id] });
        await failByWorker(render.id);
        expect((await store.fetchJob(publish.id))?.pendingReason).toMatch(/cannot complete/);
        await store.applyJobAction(render.id, 'requeue');
        expect((await store.fetchJob(publish.id))?.pendingReason).toBe('waiting for dependencies');
        await completeByWorker(render.id);
        expect((await store.fetchJob(publish.id))?.state).toBe('queued');
      });

      it('waits again when tasks of the failed dependency are requeued', async () => {
        const render = await submit(store, { name: 'render', taskRetries: 0 });
        const publish = await submit(store, { dependencies: [render.id] });
        await failByWorker(render.id);
        await store.requeueTasks(render.id, [0]);
        expect((await store.fetchJob(publish.id))?.pendingReason).toBe('waiting for dependencies');
        await completeByWorker(render.id);
        expect((await store.fetchJob(publish.id))?.state).toBe('queued');
      });

      it('names the one that cannot complete among several, and keeps waiting for the others', async () => {
        const a = await submit(store, { name: 'a', priority: 90 });
        const b = await submit(store, { name: 'b', taskRetries: 0, priority: 10 });
        const publish = await submit(store, {
          dependencies: [a.id, b.id],
          resumeOnFailedDependencies: true,
        });
        const user = await submit(store, { dependencies: [a.id, b.id] });
        await store.applyJobAction(b.id, 'fail');
        expect((await store.fetchJob(user.id))?.pendingReason).toMatch(
          new RegExp(`^dependency ${b.id} failed`),
        );
        // b failed, but `a` may still complete: resuming on failures does not release yet.
        expect(await store.fetchJob(publish.id)).toMatchObject({
          state: 'pending',
          pendingReason: 'waiting for dependencies',
        });
        await completeByWorker(a.id);
        expect((await store.fetchJob(publish.id))?.state).toBe('queued');
        expect((await store.fetchJob(user.id))?.state).toBe('pending');
      });

      it('lets a frame-dependent job resume on a failed dependency', async () => {
        const render = await submit(store, { frames: '1-2' });
        const comp = await submit(store, {
          frames: '1-2',
          dependencies: [render.id],
          frameDependent: true,
          resumeOnFailedDependencies: true,
        });
        const strict = await submit(store, {
          frames: '1-2',
          dependencies: [render.id],
          frameDependent: true,
        });
        expect((await store.fetchJob(comp.id))?.counts.pending).toBe(2);
        await store.applyJobAction(render.id, 'fail');
        expect((await store.fetchJob(comp.id))?.counts).toMatchObject({ pending: 0, queued: 2 });
        expect((await store.fetchJob(strict.id))?.counts).toMatchObject({ pending: 2 });
      });

      it('refuses a dependency that does not exist, naming its place in the list', async () => {
        const real = await submit(store);
        const refused = submit(store, { dependencies: [real.id, 'nope'] });
        await expect(refused).rejects.toMatchObject({
          code: 'invalid_input',
          field: 'dependencies.1',
        });
        await expect(refused).rejects.toThrow(/job nope does not exist/);
      });
    });

    describe('frames', () => {
      it.each([
        ['1, 3, 5', 3],
        ['1-100x5', 20],
        ['500-600step4 1:10:3', 30],
        ['10-1,1-10', 10],
      ])('keeps %j as submitted', async (frames, count) => {
        const job = await submit(store, { frames });
        expect(job.frames).toBe(frames);
        expect(job.frameCount).toBe(count);
        expect((await store.fetchJob(job.id))?.frames).toBe(frames);
        expect((await store.listJobs({}))[0]?.frames).toBe(frames);
      });
    });
  });
}
