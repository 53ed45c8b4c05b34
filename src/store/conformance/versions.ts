import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../contract.js';

/** Opens `n` stores on one fresh database, as `n` managers sharing a farm would. */
export type OpenShared = (n: number) => Promise<Store[]>;

/**
 * Conformance: products and versions. Numbers are allocated once each, also when several
 * managers allocate for one product at the same moment; folders are never shared; reviews
 * follow the statuses; the loader's view hides unapproved versions.
 */
export function versionConformance(backend: string, openShared: OpenShared): void {
  describe(`store conformance: ${backend}: versions`, () => {
    let stores: Store[] = [];
    afterEach(async () => {
      await Promise.all(stores.map((s) => s.close()));
      stores = [];
    });
    const folderOf = (product: string) => (n: number) => `/publish/${product}/v${n}`;
    const create = (store: Store, product: string, extra: { comment?: string } = {}) =>
      store.versions.create({
        product,
        submittedBy: 'ann',
        comment: extra.comment ?? '',
        folderOf: folderOf(product),
      });

    it('numbers versions v001, v002… per product and logs version.created', async () => {
      stores = await openShared(1);
      const s = stores[0]!;
      const a1 = await create(s, 'show/sh010/beauty', { comment: 'first' });
      const a2 = await create(s, 'show/sh010/beauty');
      const b1 = await create(s, 'show/sh020/beauty');
      expect([a1.name, a2.name, b1.name]).toEqual(['v001', 'v002', 'v001']);
      expect(a1).toMatchObject({
        status: 'rendering',
        product: 'show/sh010/beauty',
        comment: 'first',
        folder: '/publish/show/sh010/beauty/v1',
        submittedBy: 'ann',
      });
      const events = await s.listEvents({ after: 0, limit: 100 });
      const created = events.filter((e) => e.type === 'version.created');
      expect(created.map((e) => e.data.version)).toEqual(['v001', 'v002', 'v001']);
      expect(await s.versions.fetch(a2.id)).toMatchObject({ number: 2 });
    });

    it('never gives one number twice when several managers allocate at once', async () => {
      stores = await openShared(3);
      const product = 'show/seq010/sh010/lightingMain';
      const N = 30;
      const made = await Promise.all(
        Array.from({ length: N }, (_, i) => create(stores[i % stores.length]!, product)),
      );
      const numbers = made.map((v) => v.number).sort((x, y) => x - y);
      expect(numbers).toEqual(Array.from({ length: N }, (_, i) => i + 1));
      const [p] = await stores[0]!.versions.listProducts({ prefix: product });
      expect(p).toMatchObject({ name: product, lastVersion: N, versionCount: N });
    });

    it('refuses a folder another version has, and the refusal changes nothing', async () => {
      stores = await openShared(1);
      const s = stores[0]!;
      await create(s, 'a/b');
      const before = await s.latestEventSeq();
      await expect(
        s.versions.create({
          product: 'a/c',
          submittedBy: 'ann',
          comment: '',
          folderOf: () => '/publish/a/b/v1',
        }),
      ).rejects.toMatchObject({ code: 'conflict' });
      expect(await s.latestEventSeq()).toBe(before);
      expect(await s.versions.listProducts()).toHaveLength(1);
      // A folder the caller refuses rolls the allocation back too.
      await expect(
        s.versions.create({
          product: 'a/b',
          submittedBy: 'ann',
          comment: '',
          folderOf: () => {
            throw new Error('outside the roots');
          },
        }),
      ).rejects.toThrow('outside the roots');
      expect((await create(s, 'a/b')).name).toBe('v002');
    });

    it('approves and rejects only reviewable versions; lists approved by default', async () => {
      stores = await openShared(1);
      const s = stores[0]!;
      const v1 = await create(s, 'p/x');
      const v2 = await create(s, 'p/x');
      const v3 = await create(s, 'p/x');
      await expect(s.versions.review(v1.id, 'approved', 'ann', '')).rejects.toMatchObject({
        code: 'conflict',
      });
      for (const v of [v1, v2, v3]) {
        await s.versions.update(
          v.id,
          { status: 'pending review', movie: '/m.mp4' },
          'version.ready',
        );
      }
      const a1 = await s.versions.review(v1.id, 'approved', 'ann', 'good');
      expect(a1).toMatchObject({ status: 'approved', reviewedBy: 'ann', reviewComment: 'good' });
      await s.versions.review(v2.id, 'approved', 'bob', '');
      await s.versions.review(v3.id, 'rejected', 'bob', 'noisy');
      expect((await s.versions.list({ product: 'p/x' })).map((v) => v.name)).toEqual([
        'v002',
        'v001',
      ]);
      expect((await s.versions.list({ product: 'p/x', all: true })).map((v) => v.name)).toEqual([
        'v003',
        'v002',
        'v001',
      ]);
      expect((await s.versions.latestApproved('p/x'))?.name).toBe('v002');
      const [p] = await s.versions.listProducts();
      expect(p).toMatchObject({ latestApproved: 2, lastVersion: 3, versionCount: 3 });
      const types = (await s.listEvents({ after: 0, limit: 100 })).map((e) => e.type);
      expect(types.filter((t) => t === 'version.approved')).toHaveLength(2);
      expect(types).toContain('version.rejected');
      expect(types.filter((t) => t === 'version.ready')).toHaveLength(3);
    });

    it('finds a version by its render job and its review job', async () => {
      stores = await openShared(1);
      const s = stores[0]!;
      const v = await s.versions.create({
        product: 'p/y',
        submittedBy: '',
        comment: '',
        jobId: 'job1',
        folderOf: folderOf('p/y'),
      });
      await s.versions.update(v.id, { reviewJobId: 'job2' });
      expect((await s.versions.fetchByJob('job1'))?.id).toBe(v.id);
      expect((await s.versions.fetchByJob('job2'))?.id).toBe(v.id);
      expect(await s.versions.fetchByJob('job3')).toBeUndefined();
      await expect(s.versions.update('nope', { error: 'x' })).rejects.toMatchObject({
        code: 'not_found',
      });
    });

    it('lists products under a prefix by whole segments', async () => {
      stores = await openShared(1);
      const s = stores[0]!;
      await create(s, 'show/seq010/a');
      await create(s, 'show/seq0100/a');
      await create(s, 'show/seq010');
      const names = (await s.versions.listProducts({ prefix: 'show/seq010' })).map((p) => p.name);
      expect(names).toEqual(['show/seq010', 'show/seq010/a']);
    });
  });
}
