import { describe, expect, it } from 'vitest';
import { WORK_CHANNEL, type Store } from '../contract.js';
import { MAX_TASK_LOG_BYTES } from '../../core/worker-protocol.js';
import { boundedWorkConformance } from './bounded-work.js';
import { visibilityConformance } from './visibility.js';
import { submissionRulesConformance } from './submission-rules.js';
import { workerAppsConformance } from './worker-apps.js';
import { taskCommandsConformance } from './task-commands.js';
import type { TestClock } from './harness.js';
import { register, submit, withFreshStore, type OpenStore } from './harness.js';

/**
 * The store conformance suite: every backend runs these against a real database. Scenario
 * tests for the scheduler follow Flamenco's style: a small farm, one expectation each.
 */
export function storeConformance(backend: string, open: OpenStore): void {
  describe(`store conformance: ${backend}`, () => {
    let store: Store;
    let clock: TestClock;
    withFreshStore(open, (s, c) => {
      store = s;
      clock = c;
    });

    const claimed = async (worker: string) => {
      const t = await store.claimTask(worker);
      return t ? `${t.jobId}:${t.taskIndex}` : undefined;
    };
    const complete = (worker: string, lease: string) =>
      store.reportTask(worker, { lease, outcome: 'completed', exitCode: 0, message: '' });

    describe('jobs', () => {
      it('creates a job with one task per chunk and logs job.submitted', async () => {
        const job = await submit(store, { name: 'shot', frames: '1-10', chunkSize: 3 });
        expect(job.state).toBe('queued');
        expect(job.taskCount).toBe(4);
        expect(job.frameCount).toBe(10);
        expect(job.counts.queued).toBe(4);
        const tasks = await store.listTasks(job.id, {});
        expect(tasks.map((t) => t.frames)).toEqual([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]);
        const events = await store.listEvents({ jobId: job.id });
        expect(events.map((e) => e.type)).toEqual(['job.submitted']);
      });

      it('starts suspended when asked and resumes to queued', async () => {
        const job = await submit(store, { frames: '1-2', initialState: 'suspended' });
        expect(job.state).toBe('suspended');
        expect(job.counts.suspended).toBe(2);
        await register(store, 'w1');
        expect(await store.claimTask('w1')).toBeUndefined();
        const resumed = await store.applyJobAction(job.id, 'resume');
        expect(resumed.state).toBe('queued');
        expect(resumed.counts.queued).toBe(2);
      });

      it('refuses a dependency on a job that does not exist, and changes nothing', async () => {
        await expect(submit(store, { dependencies: ['nope'] })).rejects.toMatchObject({
          code: 'invalid_input',
          field: 'dependencies.0',
        });
        expect(await store.listJobs({})).toEqual([]);
      });

      it('rejects actions that do not fit the state', async () => {
        const job = await submit(store);
        await expect(store.applyJobAction(job.id, 'resume')).rejects.toMatchObject({
          code: 'conflict',
        });
      });

      it('hides archived and deleted jobs unless all are asked for', async () => {
        const a = await submit(store, { name: 'a' });
        const b = await submit(store, { name: 'b' });
        await store.applyJobAction(a.id, 'archive');
        await store.applyJobAction(b.id, 'delete');
        expect(await store.listJobs({})).toEqual([]);
        expect((await store.listJobs({ all: true })).map((j) => j.state).sort()).toEqual([
          'archived',
          'deleted',
        ]);
      });

      it('changes priority, pool and limits of a live job', async () => {
        const job = await submit(store);
        const changed = await store.updateJob(job.id, {
          priority: 90,
          pool: 'gpu',
          limits: ['nuke'],
        });
        expect(changed).toMatchObject({ priority: 90, pool: 'gpu', limits: ['nuke'] });
      });
    });

    describe('scheduling', () => {
      it('dispatches higher priority first, then older first, then task order', async () => {
        await register(store, 'w1', { slots: 10 });
        const low = await submit(store, { name: 'low', priority: 10, frames: '1' });
        clock.advance(1);
        const oldHigh = await submit(store, { name: 'old-high', priority: 80, frames: '1-2' });
        clock.advance(1);
        const newHigh = await submit(store, { name: 'new-high', priority: 80, frames: '1' });
        const order = [];
        for (let i = 0; i < 4; i++) order.push(await claimed('w1'));
        expect(order).toEqual([
          `${oldHigh.id}:0`,
          `${oldHigh.id}:1`,
          `${newHigh.id}:0`,
          `${low.id}:0`,
        ]);
        expect(await claimed('w1')).toBeUndefined();
      });

      it("follows the worker's pool order, then secondary pools, then jobs in no pool", async () => {
        await register(store, 'w1', { pools: ['fx', 'lighting'], slots: 10 });
        const none = await submit(store, { name: 'none', priority: 100 });
        const secondary = await submit(store, {
          name: 'sec',
          pool: 'other',
          secondaryPool: 'fx',
          priority: 100,
        });
        const lighting = await submit(store, { name: 'lighting', pool: 'lighting', priority: 10 });
        const fx = await submit(store, { name: 'fx', pool: 'fx', priority: 0 });
        const elsewhere = await submit(store, { name: 'elsewhere', pool: 'comp' });
        const order = [];
        for (let i = 0; i < 5; i++) order.push(await claimed('w1'));
        expect(order).toEqual([
          `${fx.id}:0`,
          `${lighting.id}:0`,
          `${secondary.id}:0`,
          `${none.id}:0`,
          undefined,
        ]);
        await register(store, 'w2', { pools: ['comp'] });
        expect(await claimed('w2')).toBe(`${elsewhere.id}:0`);
      });

      it('gives a job with a group only to workers in that group', async () => {
        await register(store, 'plain');
        await register(store, 'gpu', { groups: ['gpu'] });
        const job = await submit(store, { group: 'gpu' });
        expect(await claimed('plain')).toBeUndefined();
        expect(await claimed('gpu')).toBe(`${job.id}:0`);
      });

      it('keeps a job in its regions', async () => {
        await register(store, 'oregon', { region: 'us-west-2' });
        await register(store, 'london', { region: 'eu-west-2' });
        const job = await submit(store, { regions: ['eu-west-2'] });
        expect(await claimed('oregon')).toBeUndefined();
        expect(await claimed('london')).toBe(`${job.id}:0`);
      });

      it('honours allow and deny lists', async () => {
        await register(store, 'a');
        await register(store, 'b');
        await register(store, 'c');
        const allowed = await submit(store, { allowList: ['b'], frames: '1' });
        const denied = await submit(store, { denyList: ['a', 'b'], frames: '1' });
        expect(await claimed('a')).toBeUndefined();
        expect(await claimed('b')).toBe(`${allowed.id}:0`);
        expect(await claimed('c')).toBe(`${denied.id}:0`);
      });

      it('never hands out more of a limit than it has, and frees it when a task ends', async () => {
        await store.setLimit('nuke', 1);
        for (const w of ['w1', 'w2']) await register(store, w);
        const job = await submit(store, { limits: ['nuke'], frames: '1-2' });
        const first = await store.claimTask('w1');
        expect(first?.jobId).toBe(job.id);
        expect(await store.claimTask('w2')).toBeUndefined();
        expect((await store.listLimits())[0]).toMatchObject({ name: 'nuke', max: 1, inUse: 1 });
        await complete('w1', first!.lease);
        expect((await store.listLimits())[0]).toMatchObject({ inUse: 0 });
        expect(await claimed('w2')).toBe(`${job.id}:1`);
      });

      it('gives limit units back when a task is reported done in the same call as the next claim', async () => {
        await store.setLimit('lic', 1);
        await register(store, 'w1');
        const job = await submit(store, { limits: ['lic'], frames: '1-3' });
        let r = await store.work('w1', undefined, true);
        for (let i = 1; i < 3; i++) {
          expect(r.task?.jobId).toBe(job.id);
          r = await store.work(
            'w1',
            { lease: r.task!.lease, outcome: 'completed', exitCode: 0, message: '' },
            true,
          );
          expect(r.reportError).toBeNull();
          expect((await store.listLimits())[0]).toMatchObject({ inUse: 1 });
        }
        await store.work(
          'w1',
          { lease: r.task!.lease, outcome: 'completed', exitCode: 0, message: '' },
          false,
        );
        expect((await store.listLimits())[0]).toMatchObject({ inUse: 0 });
        expect((await store.fetchJob(job.id))?.state).toBe('completed');
      });

      it('passes over a job held back by a limit to the next eligible one', async () => {
        await store.setLimit('lic', 0);
        await register(store, 'w1');
        await submit(store, { limits: ['lic'], priority: 100 });
        const other = await submit(store, { priority: 1 });
        expect(await claimed('w1')).toBe(`${other.id}:0`);
      });

      it('respects the machine limit', async () => {
        for (const w of ['w1', 'w2', 'w3']) await register(store, w);
        const job = await submit(store, { frames: '1-3', machineLimit: 2 });
        expect(await claimed('w1')).toBe(`${job.id}:0`);
        expect(await claimed('w2')).toBe(`${job.id}:1`);
        expect(await claimed('w3')).toBeUndefined();
      });

      it('holds a job until its dependencies complete, then releases it', async () => {
        await register(store, 'w1');
        const first = await submit(store, { name: 'render' });
        const second = await submit(store, { name: 'publish', dependencies: [first.id] });
        expect(second.state).toBe('pending');
        const t = await store.claimTask('w1');
        expect(t?.jobId).toBe(first.id);
        expect(await store.claimTask('w1')).toBeUndefined();
        await complete('w1', t!.lease);
        expect((await store.fetchJob(second.id))?.state).toBe('queued');
        expect(await claimed('w1')).toBe(`${second.id}:0`);
        const types = (await store.listEvents({ jobId: second.id })).map((e) => e.type);
        expect(types).toEqual([
          'job.submitted',
          'job.pended',
          'job.released',
          'job.started',
          'task.started',
        ]);
      });

      it('releases frame-dependent tasks frame by frame', async () => {
        await register(store, 'w1', { slots: 10 });
        const render = await submit(store, { frames: '1-3' });
        const comp = await submit(store, {
          frames: '1-3',
          priority: 90,
          dependencies: [render.id],
          frameDependent: true,
        });
        expect(comp.state).toBe('queued');
        expect(comp.counts.pending).toBe(3);
        const t0 = await store.claimTask('w1');
        await complete('w1', t0!.lease);
        // comp outranks render now, but only its frame 1 is ready.
        expect(await claimed('w1')).toBe(`${comp.id}:0`);
        expect(await claimed('w1')).toBe(`${render.id}:1`);
      });

      it('keeps a worker off a job once it is on its bad-worker list', async () => {
        await register(store, 'bad');
        await register(store, 'good');
        const job = await submit(store, { frames: '1', badWorkerErrors: 2, taskRetries: 5 });
        for (let i = 0; i < 2; i++) {
          const t = await store.claimTask('bad');
          expect(t?.jobId).toBe(job.id);
          await store.reportTask('bad', {
            lease: t!.lease,
            outcome: 'failed',
            exitCode: 1,
            message: 'boom',
          });
        }
        expect(await store.claimTask('bad')).toBeUndefined();
        expect((await store.fetchJob(job.id))?.badWorkers).toEqual(['bad']);
        expect(await claimed('good')).toBe(`${job.id}:0`);
      });

      it('does not hand a worker more tasks than it has slots', async () => {
        await register(store, 'w1', { slots: 2 });
        await submit(store, { frames: '1-5' });
        expect(await store.claimTask('w1')).toBeDefined();
        expect(await store.claimTask('w1')).toBeDefined();
        expect(await store.claimTask('w1')).toBeUndefined();
      });

      it('gives a disabled worker nothing', async () => {
        await register(store, 'w1');
        await submit(store);
        await store.setWorkerEnabled('w1', false);
        expect(await store.claimTask('w1')).toBeUndefined();
        expect((await store.fetchWorker('w1'))?.state).toBe('disabled');
      });
    });

    describe('leases and failures', () => {
      it('completes the job when every task is done, once', async () => {
        await register(store, 'w1');
        const job = await submit(store, { frames: '1-2' });
        for (let i = 0; i < 2; i++) {
          const t = await store.claimTask('w1');
          await complete('w1', t!.lease);
        }
        const done = await store.fetchJob(job.id);
        expect(done?.state).toBe('completed');
        expect(done?.counts.completed).toBe(2);
        const finished = (await store.listEvents({ jobId: job.id })).filter(
          (e) => e.type === 'job.finished',
        );
        expect(finished).toHaveLength(1);
      });

      it('refuses a second report on the same lease', async () => {
        await register(store, 'w1');
        await submit(store);
        const t = await store.claimTask('w1');
        await complete('w1', t!.lease);
        await expect(complete('w1', t!.lease)).rejects.toMatchObject({ code: 'lease_lost' });
      });

      it('requeues a task whose lease expired and refuses the old lease afterwards', async () => {
        await register(store, 'w1');
        await register(store, 'w2');
        const job = await submit(store);
        const t = await store.claimTask('w1');
        clock.advance(5_000);
        await store.heartbeat('w1', { tasks: [{ lease: t!.lease }] });
        clock.advance(9_000);
        expect((await store.expireLeases(60_000)).requeued).toBe(0);
        clock.advance(2_000);
        expect((await store.expireLeases(60_000)).requeued).toBe(1);
        const again = await store.claimTask('w2');
        expect(again?.jobId).toBe(job.id);
        expect(again?.attempt).toBe(2);
        await expect(complete('w1', t!.lease)).rejects.toMatchObject({ code: 'lease_lost' });
        const hb = await store.heartbeat('w1', { tasks: [{ lease: t!.lease }] });
        expect(hb.revoked).toEqual([t!.lease]);
      });

      it('marks a silent worker stalled and requeues its tasks', async () => {
        await register(store, 'w1');
        await submit(store);
        await store.claimTask('w1');
        clock.advance(31_000);
        const r = await store.expireLeases(30_000);
        expect(r.stalled).toEqual(['w1']);
        expect((await store.fetchWorker('w1'))?.state).toBe('stalled');
        expect((await store.listTasks((await store.listJobs({}))[0]!.id, {}))[0]?.state).toBe(
          'queued',
        );
      });

      it('retries a failing task, then fails it and the job', async () => {
        await register(store, 'w1');
        const job = await submit(store, { taskRetries: 1, badWorkerErrors: 0 });
        for (let i = 0; i < 2; i++) {
          const t = await store.claimTask('w1');
          expect(t).toBeDefined();
          await store.reportTask('w1', {
            lease: t!.lease,
            outcome: 'failed',
            exitCode: 3,
            message: 'exit 3',
          });
        }
        const failed = await store.fetchJob(job.id);
        expect(failed?.state).toBe('failed');
        expect(failed?.errorCount).toBe(2);
        expect((await store.listTasks(job.id, {}))[0]).toMatchObject({
          state: 'failed',
          errorCount: 2,
        });
        const types = (await store.listEvents({ jobId: job.id })).map((e) => e.type);
        expect(types.filter((t) => t === 'job.error')).toHaveLength(2);
        expect(types).toContain('job.failed');
      });

      it('fails a job past its error limit', async () => {
        await register(store, 'w1');
        const job = await submit(store, {
          frames: '1-5',
          taskRetries: 10,
          jobErrorLimit: 2,
          badWorkerErrors: 0,
        });
        for (let i = 0; i < 2; i++) {
          const t = await store.claimTask('w1');
          await store.reportTask('w1', {
            lease: t!.lease,
            outcome: 'failed',
            exitCode: 1,
            message: 'x',
          });
        }
        expect((await store.fetchJob(job.id))?.state).toBe('failed');
      });

      it('suspending a job revokes its running lease and dispatches nothing more', async () => {
        await register(store, 'w1');
        const job = await submit(store, { frames: '1-2' });
        const t = await store.claimTask('w1');
        await store.applyJobAction(job.id, 'suspend');
        const hb = await store.heartbeat('w1', { tasks: [{ lease: t!.lease }] });
        expect(hb.revoked).toEqual([t!.lease]);
        expect(await store.claimTask('w1')).toBeUndefined();
        expect((await store.fetchJob(job.id))?.counts.suspended).toBe(2);
      });

      it('requeues chosen tasks of a completed job and makes it active again', async () => {
        await register(store, 'w1');
        const job = await submit(store, { frames: '1-2' });
        for (let i = 0; i < 2; i++) await complete('w1', (await store.claimTask('w1'))!.lease);
        const tasks = await store.requeueTasks(job.id, [1]);
        expect(tasks[0]?.state).toBe('queued');
        expect((await store.fetchJob(job.id))?.state).toBe('queued');
        expect(await claimed('w1')).toBe(`${job.id}:1`);
      });

      it('hands back a task without counting an error', async () => {
        await register(store, 'w1');
        const job = await submit(store);
        const t = await store.claimTask('w1');
        await store.reportTask('w1', {
          lease: t!.lease,
          outcome: 'handed-back',
          exitCode: null,
          message: '',
        });
        expect((await store.fetchJob(job.id))?.errorCount).toBe(0);
        expect((await store.claimTask('w1'))?.attempt).toBe(2);
      });

      it('requeues what a restarted worker held', async () => {
        await register(store, 'w1');
        const job = await submit(store);
        await store.claimTask('w1');
        await register(store, 'w1');
        expect((await store.fetchJob(job.id))?.counts.queued).toBe(1);
      });
    });

    describe('event plugin holds', () => {
      it('holds a submitted job for its plugins and releases it when the last one finishes', async () => {
        await register(store, 'w1');
        const sub = await submit(store);
        const held = await store.createJob((await store.fetchJob(sub.id))!, [1], {
          holdFor: ['a', 'b'],
        });
        expect(held).toMatchObject({ state: 'pending', heldFor: ['a', 'b'] });
        await store.applyJobAction(sub.id, 'suspend');
        expect(await store.claimTask('w1')).toBeUndefined();
        expect((await store.releaseHold(held.id, 'a'))?.state).toBe('pending');
        const released = await store.releaseHold(held.id, 'b');
        expect(released).toMatchObject({ state: 'queued', heldFor: [] });
        expect(await claimed('w1')).toBe(`${held.id}:0`);
      });

      it('keeps a job pending with the reason when a plugin failed, until a user releases it', async () => {
        const sub = await submit(store);
        const held = await store.createJob((await store.fetchJob(sub.id))!, [1], {
          holdFor: ['a'],
        });
        const failed = await store.releaseHold(held.id, 'a', 'boom');
        expect(failed).toMatchObject({
          state: 'pending',
          pendingReason: 'event plugin a failed: boom',
        });
        expect((await store.applyJobAction(held.id, 'release')).state).toBe('queued');
      });

      it('adds a prerequisite job in one step and keeps the existing dependencies', async () => {
        const first = await submit(store, { name: 'first' });
        const render = await store.createJob(
          (await store.fetchJob((await submit(store, { dependencies: [first.id] })).id))!,
          [1],
          { holdFor: ['gfs-sync'] },
        );
        const folder = await store.createJob((await store.fetchJob(first.id))!, [0], {
          prerequisiteOf: render.id,
        });
        expect((await store.fetchJob(render.id))?.dependencies.sort()).toEqual(
          [first.id, folder.id].sort(),
        );
        const released = await store.releaseHold(render.id, 'gfs-sync');
        expect(released).toMatchObject({
          state: 'pending',
          pendingReason: 'waiting for dependencies',
        });
      });

      it('keeps plugin data on a job', async () => {
        const job = await submit(store);
        await store.setJobPluginData(job.id, 'gfs-sync', {
          outcomes: [{ dir: '/a', outcome: 'Sync Complete' }],
        });
        expect((await store.fetchJob(job.id))?.pluginData).toEqual({
          'gfs-sync': { outcomes: [{ dir: '/a', outcome: 'Sync Complete' }] },
        });
      });

      it('stores plugin settings, cursors and path mappings', async () => {
        await store.savePluginSettings({ name: 'p', state: 'global', config: { n: 3 } });
        await store.savePluginSettings({ name: 'p', state: 'opt-in', config: { n: 4 } });
        expect(await store.listPluginSettings()).toMatchObject([
          { name: 'p', state: 'opt-in', config: { n: 4 } },
        ]);
        expect(await store.fetchCursor('p')).toBeUndefined();
        await store.saveCursor('p', 7);
        await store.saveCursor('p', 9);
        expect(await store.fetchCursor('p')).toBe(9);
        const rule = await store.addPathMapping({
          prefix: '/gfs/',
          replacement: '/mnt/a/',
          region: 'r1',
          os: '',
          caseSensitive: true,
        });
        expect(await store.listPathMappings()).toEqual([rule]);
        await store.removePathMapping(rule.id);
        await expect(store.removePathMapping(rule.id)).rejects.toMatchObject({ code: 'not_found' });
      });
    });

    describe('access tokens', () => {
      it('keeps tokens by hash, lists them without secrets and revokes them', async () => {
        const alice = await store.createToken({ name: 'alice', role: 'user', hash: 'h1' });
        await store.createToken({ name: 'ci', role: 'worker', hash: 'h2' });
        const rack = await store.createToken({
          name: 'rack',
          role: 'worker',
          hash: 'h3',
          workers: 'render-*',
        });
        expect(await store.findToken('h1')).toEqual(alice);
        expect(alice.workers).toBe('*');
        expect((await store.findToken('h2'))!.workers).toBe('*');
        expect(await store.findToken('h3')).toEqual(rack);
        expect(rack.workers).toBe('render-*');
        expect(await store.findToken('nope')).toBeUndefined();
        expect((await store.listTokens()).map((t) => [t.name, t.role]).sort()).toEqual([
          ['alice', 'user'],
          ['ci', 'worker'],
          ['rack', 'worker'],
        ]);
        const revoked = await store.revokeToken(alice.id);
        expect(revoked.revokedAt).not.toBeNull();
        expect(await store.findToken('h1')).toBeUndefined();
        await expect(store.revokeToken(alice.id)).rejects.toMatchObject({ code: 'not_found' });
      });

      it('keeps live names unique, also when two managers race (one wins, the other is a conflict)', async () => {
        const results = await Promise.allSettled([
          store.createToken({ name: 'alice', role: 'user', hash: 'a1' }),
          store.createToken({ name: 'alice', role: 'admin', hash: 'a2' }),
        ]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const refused = results.find((r) => r.status === 'rejected');
        expect(refused?.reason).toMatchObject({ code: 'conflict' });
        const live = (await store.listTokens()).filter((t) => t.name === 'alice');
        expect(live).toHaveLength(1);
        await store.revokeToken(live[0]!.id);
        await expect(
          store.createToken({ name: 'alice', role: 'user', hash: 'a3' }),
        ).resolves.toMatchObject({ name: 'alice' });
      });
    });

    describe('logs', () => {
      it('keeps log chunks per attempt and follows them by sequence', async () => {
        await register(store, 'w1');
        const job = await submit(store);
        const t = await store.claimTask('w1');
        await store.appendTaskLog('w1', {
          lease: t!.lease,
          chunks: [{ stream: 'stdout', text: 'hello\n' }],
          progress: 50,
        });
        await store.appendTaskLog('w1', {
          lease: t!.lease,
          chunks: [{ stream: 'stderr', text: 'world\n' }],
        });
        const log = await store.readTaskLog(job.id, 0, {});
        expect(log.attempt).toBe(1);
        expect(log.chunks.map((c) => c.text).join('')).toBe('hello\nworld\n');
        expect(
          (await store.readTaskLog(job.id, 0, { after: 1 })).chunks.map((c) => c.text),
        ).toEqual(['world\n']);
        expect((await store.listTasks(job.id, {}))[0]?.progress).toBe(50);
      });

      it('takes each numbered log batch of an attempt once', async () => {
        await register(store, 'w1');
        const job = await submit(store, { taskRetries: 1 });
        const t = await store.claimTask('w1');
        const send = (lease: string, text: string, batch?: number) =>
          store.appendTaskLog('w1', {
            lease,
            chunks: [{ stream: 'stdout', text }],
            ...(batch === undefined ? {} : { batch }),
          });
        await send(t!.lease, 'one\n', 1);
        await send(t!.lease, 'one\n', 1); // sent again: its reply was lost
        await send(t!.lease, 'two\n', 2);
        await send(t!.lease, 'one\n', 1); // a stale copy arriving late
        await send(t!.lease, 'plain\n'); // unnumbered (an older worker): always taken
        const text = async () =>
          (await store.readTaskLog(job.id, 0, {})).chunks.map((c) => c.text).join('');
        expect(await text()).toBe('one\ntwo\nplain\n');
        // The next attempt numbers its batches from 1 again.
        await store.reportTask('w1', {
          lease: t!.lease,
          outcome: 'failed',
          exitCode: 1,
          message: 'x',
        });
        const again = await store.claimTask('w1');
        expect(again!.attempt).toBe(2);
        await send(again!.lease, 'retry\n', 1);
        expect(await text()).toBe('retry\n');
      });

      it('trims an attempt log past its bound with a marker', async () => {
        await register(store, 'w1');
        const job = await submit(store);
        const t = await store.claimTask('w1');
        const big = 'x'.repeat(60 * 1024);
        const rounds = Math.ceil(MAX_TASK_LOG_BYTES / (big.length * 4)) + 2;
        for (let i = 0; i < rounds; i++) {
          const chunks = Array.from({ length: 4 }, () => ({
            stream: 'stdout' as const,
            text: big,
          }));
          await store.appendTaskLog('w1', { lease: t!.lease, chunks });
        }
        let total = 0;
        let text = '';
        let after = 0;
        for (;;) {
          const page = await store.readTaskLog(job.id, 0, { after });
          if (page.chunks.length === 0) break;
          for (const c of page.chunks) {
            total += c.stream === 'stdout' ? c.text.length : 0;
            text = c.text;
            after = c.seq;
          }
        }
        // Head and latest tail are kept, with a marker between (`visibility.ts` checks which).
        expect(total).toBeLessThanOrEqual(MAX_TASK_LOG_BYTES);
        expect(total).toBeGreaterThan(MAX_TASK_LOG_BYTES - 2 * big.length);
        expect(text).toBe(big);
      });

      it('refuses log chunks for a lease that is not current', async () => {
        await register(store, 'w1');
        await expect(
          store.appendTaskLog('w1', { lease: 'forged', chunks: [{ stream: 'stdout', text: 'x' }] }),
        ).rejects.toMatchObject({ code: 'lease_lost' });
      });
    });

    describe('several managers', () => {
      /** Polls `check` (re-running `poke` each round) until it holds, for up to 5 s. */
      const eventually = async (check: () => boolean, poke?: () => Promise<void>) => {
        for (let i = 0; i < 250; i++) {
          await poke?.();
          if (check()) return;
          await new Promise((r) => setTimeout(r, 20));
        }
        throw new Error('condition not met within 5 s');
      };

      it('gives a role to one holder at a time, renews it and hands it over on expiry', async () => {
        expect(await store.tryLead('housekeeping', 'm1', 10_000)).toBe(true);
        expect(await store.tryLead('housekeeping', 'm2', 10_000)).toBe(false);
        expect(await store.tryLead('plugin:gfs-sync', 'm2', 10_000)).toBe(true);
        clock.advance(9_000);
        expect(await store.tryLead('housekeeping', 'm1', 10_000)).toBe(true);
        clock.advance(9_000);
        expect(await store.tryLead('housekeeping', 'm2', 10_000)).toBe(false);
        clock.advance(2_000);
        expect(await store.tryLead('housekeeping', 'm2', 10_000)).toBe(true);
        expect(await store.tryLead('housekeeping', 'm1', 10_000)).toBe(false);
      });

      it('lets exactly one of several simultaneous candidates lead', async () => {
        const won = await Promise.all(
          ['m1', 'm2', 'm3', 'm4', 'm5'].map((m) => store.tryLead('housekeeping', m, 5_000)),
        );
        expect(won.filter(Boolean)).toHaveLength(1);
      });

      it('delivers notifications to listeners until they stop listening', async () => {
        const heard: string[] = [];
        const other: string[] = [];
        const stop = store.onNotify((c) => heard.push(c));
        store.onNotify((c) => other.push(c));
        await eventually(
          () => heard.includes('ping') && other.includes('ping'),
          () => store.notify('ping'),
        );
        stop();
        heard.length = 0;
        await store.notify('plugin:after');
        await eventually(() => other.includes('plugin:after'));
        expect(heard).toEqual([]);
        await expect(store.notify('no spaces allowed')).rejects.toMatchObject({
          code: 'invalid_input',
        });
      });

      it('notifies the work channel when a change makes work dispatchable', async () => {
        const heard: string[] = [];
        store.onNotify((c) => heard.push(c));
        await eventually(
          () => heard.includes('ping'),
          () => store.notify('ping'),
        );
        await submit(store);
        await eventually(() => heard.includes(WORK_CHANNEL));
      });

      it('answers a health check', async () => {
        const health = await store.health();
        expect(health.ok).toBe(true);
        expect(health.detail).toContain(store.kind);
      });
    });
  });
  boundedWorkConformance(backend, open);
  submissionRulesConformance(backend, open);
  visibilityConformance(backend, open);
  workerAppsConformance(backend, open);
  taskCommandsConformance(backend, open);
}
