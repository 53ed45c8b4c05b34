import { describe, expect, it } from 'vitest';
import { knownApps } from '../../core/app-settings.js';
import type { Store } from '../contract.js';
import { register, submit, withFreshStore, type OpenStore } from './harness.js';

/**
 * Application plugins workers offer (`--apps-dir`): a job naming a plugin that is not
 * built in is given only to workers that registered it; built-in plugins go to every worker,
 * including older ones that register no list. Runs against every backend.
 */
export function workerAppsConformance(backend: string, open: OpenStore): void {
  describe(`store conformance: ${backend}: application plugins workers offer`, () => {
    let store: Store;
    withFreshStore(open, (s) => {
      store = s;
    });

    it('keeps the plugins a worker offers, sorted and without repeats, and shows them', async () => {
      await register(store, 'maya-node', { apps: ['Nuke', 'MayaBatch', 'Nuke'] });
      await register(store, 'plain');
      expect((await store.fetchWorker('maya-node'))?.apps).toEqual(['MayaBatch', 'Nuke']);
      expect((await store.fetchWorker('plain'))?.apps).toEqual([]);
      const listed = await store.listWorkers();
      expect(listed.find((w) => w.name === 'maya-node')?.apps).toEqual(['MayaBatch', 'Nuke']);
    });

    it('gives a job of an offered plugin only to a worker that offers it', async () => {
      await register(store, 'plain');
      await register(store, 'nuke-node', { apps: ['Nuke'] });
      const maya = await submit(store, { plugin: 'MayaBatch', frames: '1-2', priority: 90 });
      const shell = await submit(store, { plugin: 'CommandLine', frames: '1', priority: 10 });

      // A worker without the plugin passes the higher-priority MayaBatch job over.
      expect((await store.claimTask('plain'))?.jobId).toBe(shell.id);
      expect(await store.claimTask('nuke-node')).toBeUndefined();
      expect((await store.fetchJob(maya.id))?.counts.queued).toBe(2);

      await register(store, 'maya-node', { apps: ['MayaBatch'] });
      const task = await store.claimTask('maya-node');
      expect(task).toMatchObject({ jobId: maya.id, plugin: 'MayaBatch', frames: [1] });
    });

    it('follows a worker that registers again with another list', async () => {
      const maya = await submit(store, { plugin: 'MayaBatch' });
      await register(store, 'w', { apps: ['MayaBatch'] });
      await register(store, 'w', { apps: [] });
      expect(await store.claimTask('w')).toBeUndefined();
      await register(store, 'w', { apps: ['MayaBatch'] });
      expect((await store.claimTask('w'))?.jobId).toBe(maya.id);
    });

    it('gives every built-in plugin to a worker that offers nothing more', async () => {
      await register(store, 'plain', { slots: knownApps.length });
      const ids = new Set<string>();
      for (const plugin of knownApps) ids.add((await submit(store, { plugin })).id);
      const got = new Set<string>();
      for (let i = 0; i < knownApps.length; i++) {
        const t = await store.claimTask('plain');
        if (t) got.add(t.jobId);
      }
      expect(got).toEqual(ids);
    });
  });
}
