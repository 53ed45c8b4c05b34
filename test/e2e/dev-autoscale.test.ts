import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DroverClient } from '../../src/client/index.js';
import { startDev, stopProcess, until, untilJobState } from '../farm.js';

/**
 * `drover dev --autoscale`, the real command: no worker at the start, one local fleet per
 * region; a submitted job makes workers appear, and they go after the idle time — what a
 * newcomer sees in its output.
 */
const running: ChildProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map(stopProcess));
}, 60_000);

describe('drover dev --autoscale', () => {
  it('starts with no worker, brings workers up for a job and stops them when idle', async () => {
    const data = mkdtempSync(join(tmpdir(), 'drover-dev-autoscale-'));
    const farm = await startDev(data, [
      '--regions',
      'r1,r2',
      '--autoscale',
      '--idle-shutdown',
      '3',
      '--headless',
    ]);
    running.push(farm.child);
    expect(farm.out()).toContain('r1: no workers yet; fleet r1 (local, max 3)');
    const token = readFileSync(join(data, 'admin-token'), 'utf8').trim();
    const client = new DroverClient({ url: farm.url, token });
    expect(await client.listWorkers()).toEqual([]);

    const job = await client.submitJob({
      name: 'autoscaled',
      plugin: 'CommandLine',
      pluginInfo: { executable: process.execPath, arguments: ['-e', 'setTimeout(() => {}, 500)'] },
      frames: '1-3',
      regions: ['r2'],
    });
    const done = await untilJobState(client, job.id, ['completed', 'failed'], 60_000);
    expect(done).toMatchObject({ state: 'completed', errorCount: 0 });
    // Only the job's region grew.
    const workers = await client.listWorkers();
    expect(workers.length).toBeGreaterThan(0);
    expect(workers.every((w) => w.name.startsWith('r2-') && w.region === 'r2')).toBe(true);

    await until(
      'the workers to be stopped after their idle time',
      () =>
        /fleet r2 stopped r2-\S+: drained/.test(farm.out()) &&
        /worker r2-\S+ stopped/.test(farm.out()),
      30_000,
    );
    expect(farm.out()).toMatch(/fleet r2 launched \d worker\(s\): demand/);
    expect(farm.out()).not.toMatch(/fleet r1 launched/);
  }, 120_000);
});
