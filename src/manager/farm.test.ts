import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Principal, Role } from '../core/auth.js';
import { MAX_FRAMES_PER_JOB } from '../core/frames.js';
import { TestClock } from '../store/conformance/harness.js';
import type { Store } from '../store/contract.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { defaultManagerSettings, type ManagerSettings } from './config.js';
import { Farm, frameBudget } from './farm.js';

const quiet = pino({ level: 'silent' });
const DAY_MS = 24 * 60 * 60_000;

const principal = (role: Role, tokenId = `t-${role}`, name: string = role): Principal => ({
  tokenId,
  name,
  role,
  workers: '*',
});

const job = (frames: string, extra: Record<string, unknown> = {}) => ({
  name: 'shot',
  plugin: 'CommandLine',
  pluginInfo: { executable: '/bin/echo', arguments: ['{start}'] },
  frames,
  ...extra,
});

describe('Farm: bounded submissions', () => {
  let store: Store;
  let clock: TestClock;
  const farmWith = (settings: Partial<ManagerSettings> = {}) =>
    new Farm(store, { ...defaultManagerSettings, ...settings }, quiet);

  beforeEach(async () => {
    clock = new TestClock();
    store = await openSqliteStore(join(mkdtempSync(join(tmpdir(), 'drover-farm-')), 'd.db'), {
      now: clock.now,
    });
  });
  afterEach(async () => {
    await store.close();
  });

  describe('frame budget', () => {
    it("refuses a user's job over the budget, naming frames and the budget; admins are exempt", async () => {
      const farm = farmWith({ maxFramesPerJob: { user: 100 } });
      const refused = farm.submitJob(job('1-101'), principal('user'));
      await expect(refused).rejects.toMatchObject({ code: 'invalid_input', field: 'frames' });
      await expect(refused).rejects.toThrow(/101 frames.*at most 100/);
      expect(await store.listJobs({ all: true })).toEqual([]);

      expect((await farm.submitJob(job('1-100'), principal('user'))).frameCount).toBe(100);
      expect((await farm.submitJob(job('1-101'), principal('admin'))).frameCount).toBe(101);
      // Without a principal (--no-auth, in-process callers) the user's budget applies.
      await expect(farm.submitJob(job('1-101'))).rejects.toMatchObject({ field: 'frames' });
    });

    it("defaults to 1,000,000 frames for users, and never exceeds the core's bound", () => {
      expect(frameBudget(defaultManagerSettings, principal('user'))).toBe(1_000_000);
      expect(frameBudget(defaultManagerSettings, principal('admin'))).toBe(MAX_FRAMES_PER_JOB);
      const generous = { ...defaultManagerSettings, maxFramesPerJob: { user: 5_000_000 } };
      expect(frameBudget(generous, principal('user'))).toBe(MAX_FRAMES_PER_JOB);
    });
  });

  describe('Idempotency-Key', () => {
    it('returns the first job to a retry by the same token, whatever the JSON key order', async () => {
      const farm = farmWith();
      const alice = principal('user', 'tok-alice', 'alice');
      const first = await farm.submitJob(job('1-10', { priority: 60 }), alice, {
        idempotencyKey: 'a6f1c0de-0000-4000-8000-000000000001',
      });
      // The same submission, its JSON keys in another order.
      const reordered = Object.fromEntries(Object.entries(job('1-10', { priority: 60 })).reverse());
      const again = await farm.submitJob(reordered, alice, {
        idempotencyKey: 'a6f1c0de-0000-4000-8000-000000000001',
      });
      expect(again.id).toBe(first.id);
      // Another token with the same key text makes its own job.
      const bob = await farm.submitJob(
        job('1-10', { priority: 60 }),
        principal('user', 'tok-bob', 'bob'),
        { idempotencyKey: 'a6f1c0de-0000-4000-8000-000000000001' },
      );
      expect(bob.id).not.toBe(first.id);
      // No key, no deduplication.
      expect((await farm.submitJob(job('1-10', { priority: 60 }), alice)).id).not.toBe(first.id);
      expect(await store.listJobs({})).toHaveLength(3);
    });

    it('refuses a key reused with another body (409), and a malformed key (400)', async () => {
      const farm = farmWith();
      const alice = principal('user');
      const first = await farm.submitJob(job('1-10'), alice, { idempotencyKey: 'k-1' });
      const refused = farm.submitJob(job('1-11'), alice, { idempotencyKey: 'k-1' });
      await expect(refused).rejects.toMatchObject({ code: 'conflict' });
      await expect(refused).rejects.toThrow(first.id);
      await expect(
        farm.submitJob(job('1-10'), alice, { idempotencyKey: 'bad\u0000key' }),
      ).rejects.toMatchObject({ code: 'invalid_input', field: 'Idempotency-Key' });
      expect(await store.listJobs({})).toHaveLength(1);
    });
  });

  describe('purge', () => {
    it("deletes a deleted job's tasks after --purge-deleted-after, not before", async () => {
      const farm = farmWith({ purgeDeletedAfterMs: 3 * DAY_MS });
      const doomed = await farm.submitJob(job('1-40'), principal('admin'));
      await farm.jobAction(doomed.id, 'delete');
      clock.advance(3 * DAY_MS - 1);
      expect(await farm.purge()).toBe(false);
      expect(await store.listTasks(doomed.id, {})).toHaveLength(40);
      clock.advance(2);
      await farm.purge();
      expect(await store.listTasks(doomed.id, {})).toEqual([]);
    });
  });
});
