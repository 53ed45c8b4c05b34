import { describe, expect, it } from 'vitest';
import { DroverError } from '../../core/errors.js';
import { fleetSchema, type FleetMachine } from '../../core/fleet.js';
import type { Store } from '../contract.js';
import { register, submit, withFreshStore, type OpenStore, type TestClock } from './harness.js';

/**
 * Conformance: the fleets family (issue 12) and the interrupted report. Fleet definitions
 * are kept whole and a change is one transaction with its `fleet.changed` event; machines
 * are recorded once however often a launch is retried; a fleet with live machines cannot be
 * deleted; an interrupted task is requeued at once with its interruption count up and no
 * error counted against the job or the worker.
 */
export function fleetConformance(backend: string, open: OpenStore): void {
  describe(`store conformance: ${backend}: fleets`, () => {
    let store: Store;
    let clock: TestClock;
    withFreshStore(open, (s, c) => {
      store = s;
      clock = c;
    });

    const definition = (name: string, extra: Record<string, unknown> = {}) =>
      fleetSchema.parse({ name, provider: 'local', region: 'us', max: 3, ...extra });

    const machine = (id: string, extra: Partial<FleetMachine> = {}): FleetMachine => ({
      id,
      fleet: 'render',
      provider: 'local',
      worker: `render-${id}`,
      state: 'booting',
      capacity: 'spot',
      costPerHour: 0.5,
      launchedAt: clock.now(),
      registeredAt: null,
      terminatedAt: null,
      failure: null,
      ...extra,
    });

    it('creates, lists, updates and pauses fleets, each change an event', async () => {
      const created = await store.fleets.createFleet(definition('render', { pools: ['cpu'] }));
      expect(created).toMatchObject({ name: 'render', pools: ['cpu'], pausedReason: null });
      await expect(store.fleets.createFleet(definition('render'))).rejects.toMatchObject({
        code: 'conflict',
      });
      clock.advance(1000);
      const updated = await store.fleets.updateFleet(definition('render', { max: 7 }));
      expect(updated).toMatchObject({ max: 7, createdAt: created.createdAt });
      expect(updated.updatedAt).toBe(created.createdAt + 1000);
      await expect(
        store.fleets.updateFleet(definition('render', { provider: 'ec2' })),
      ).rejects.toMatchObject({ code: 'conflict' });
      await expect(store.fleets.updateFleet(definition('nope'))).rejects.toMatchObject({
        code: 'not_found',
      });
      const paused = await store.fleets.pauseFleet('render', 'boot failures');
      expect(paused.pausedReason).toBe('boot failures');
      const resumed = await store.fleets.updateFleet(definition('render', { max: 7 }), {
        resume: true,
      });
      expect(resumed.pausedReason).toBeNull();
      expect((await store.fleets.listFleets()).map((f) => f.name)).toEqual(['render']);
      const events = await store.listEvents({ types: ['fleet.changed', 'fleet.paused'] });
      expect(events.map((e) => [e.type, e.data.action ?? e.data.reason])).toEqual([
        ['fleet.changed', 'created'],
        ['fleet.changed', 'updated'],
        ['fleet.paused', 'boot failures'],
        ['fleet.changed', 'resumed'],
      ]);
    });

    it('records a machine once, however often a launch is retried, and tracks its states', async () => {
      await store.fleets.createFleet(definition('render'));
      const first = await store.fleets.recordMachines([machine('m1'), machine('m2')], {
        type: 'fleet.launched',
        data: { fleet: 'render' },
      });
      expect(first.map((m) => m.id)).toEqual(['m1', 'm2']);
      const again = await store.fleets.recordMachines([machine('m1'), machine('m2')], {
        type: 'fleet.launched',
        data: { fleet: 'render' },
      });
      expect(again).toEqual([]);
      expect(await store.listEvents({ types: ['fleet.launched'] })).toHaveLength(1);

      clock.advance(2000);
      const running = await store.fleets.setMachineState('local', 'm1', 'running');
      expect(running).toMatchObject({ state: 'running', registeredAt: clock.now() });
      await store.fleets.setMachineState('local', 'm2', 'terminated', {
        failure: 'never registered',
      });
      const live = await store.fleets.listMachines({ fleet: 'render', live: true });
      expect(live.map((m) => m.id)).toEqual(['m1']);
      const all = await store.fleets.listMachines({ fleet: 'render' });
      expect(all.find((m) => m.id === 'm2')).toMatchObject({
        state: 'terminated',
        terminatedAt: clock.now(),
        failure: 'never registered',
      });
      expect(await store.fleets.setMachineState('local', 'gone', 'running')).toBeUndefined();
    });

    it('refuses to delete a fleet that still has machines, and changes nothing', async () => {
      await store.fleets.createFleet(definition('render'));
      await store.fleets.recordMachines([machine('m1')]);
      const err = await store.fleets.deleteFleet('render').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DroverError);
      expect((err as DroverError).code).toBe('conflict');
      expect(await store.fleets.fetchFleet('render')).toBeDefined();
      await store.fleets.setMachineState('local', 'm1', 'terminated');
      await store.fleets.deleteFleet('render');
      expect(await store.fleets.fetchFleet('render')).toBeUndefined();
      await expect(store.fleets.deleteFleet('render')).rejects.toMatchObject({
        code: 'not_found',
      });
    });

    it('requeues an interrupted task at once, counting an interruption and no error', async () => {
      await register(store, 'w1');
      await register(store, 'w2');
      const job = await submit(store, { frames: '1', taskRetries: 0 });
      const first = (await store.claimTask('w1'))!;
      await store.reportTask('w1', {
        lease: first.lease,
        outcome: 'interrupted',
        exitCode: null,
        message: 'the machine is going away',
      });
      const after = (await store.fetchJob(job.id))!;
      expect(after).toMatchObject({ errorCount: 0, badWorkers: [] });
      expect(after.counts.queued).toBe(1);
      const [task] = await store.listTasks(job.id, {});
      expect(task).toMatchObject({ state: 'queued', errorCount: 0 });
      expect(await store.fleets.interruptedQueuedTasks(1)).toEqual(new Map([[job.id, 1]]));
      expect((await store.fleets.interruptedQueuedTasks(2)).size).toBe(0);
      const events = await store.listEvents({ types: ['task.interrupted'] });
      expect(events.map((e) => [e.jobId, e.worker, e.data.interruptions])).toEqual([
        [job.id, 'w1', 1],
      ]);
      // Another worker takes it and completes it; the job completes with no error.
      const second = (await store.claimTask('w2'))!;
      expect(second.jobId).toBe(job.id);
      await store.reportTask('w2', {
        lease: second.lease,
        outcome: 'completed',
        exitCode: 0,
        message: '',
      });
      expect(await store.fetchJob(job.id)).toMatchObject({ state: 'completed', errorCount: 0 });
    });
  });
}
