import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DroverClient } from '../../src/client/index.js';
import { startDev, stopProcess, until, untilJobState } from '../farm.js';

/**
 * `drover dev` protects a newcomer's first multi-region render: gfs-sync starts global on its
 * simulated GFS, so a job's output folder is made and synced to every region before any
 * frame renders. A state the user chose later is kept across restarts. The real `drover dev`
 * process, its real worker processes, its real replicator.
 */

const running: ChildProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map(stopProcess));
}, 60_000);

/** Starts `drover dev` on `data` (two regions, one worker each, a 1 s sync delay). */
async function dev(data: string): ReturnType<typeof startDev> {
  const farm = await startDev(data, [
    '--regions',
    'us-west-2,eu-west-2',
    '--workers-per-region',
    '1',
    '--sync-delay',
    '1',
    '--headless',
  ]);
  running.push(farm.child);
  return farm;
}

describe.runIf(process.platform === 'linux')('drover dev: gfs-sync on by default', () => {
  it('holds a first multi-region job until its output folder is synced everywhere, and keeps a state chosen later', async () => {
    const data = mkdtempSync(join(tmpdir(), 'drover-dev-gfs-'));
    const first = await dev(data);
    expect(first.out()).toMatch(/^ +gfs-sync global:/m);
    const token = readFileSync(join(data, 'admin-token'), 'utf8').trim();
    const admin = new DroverClient({ url: first.url, token });
    expect((await admin.getPlugin('gfs-sync')).state).toBe('global');

    const job = await admin.submitJob({
      name: 'first render',
      plugin: 'builtin-render',
      pluginInfo: { width: 32, height: 18, samples: 1 },
      frames: '1-4',
      chunkSize: 1,
      regions: ['us-west-2', 'eu-west-2'],
      outputDirectories: ['/gfs/show/seq010/shot010/v001'],
    });
    expect(job.state).toBe('pending');
    expect(job.heldFor).toEqual(['gfs-sync']);
    const done = await untilJobState(admin, job.id, ['completed', 'failed'], 90_000);
    expect(done.state).toBe('completed');
    const folders = (await admin.listJobs()).find(
      (j) => j.name === 'first render [Make Directories]',
    );
    expect(folders?.state).toBe('completed');
    // One folder, every frame in it, at every site: no `v001[#S=…]` beside it.
    for (const site of readdirSync(join(data, 'gfs', 'sites'))) {
      const shot = join(data, 'gfs', 'sites', site, 'show', 'seq010', 'shot010');
      const frames = () => {
        try {
          return readdirSync(join(shot, 'v001')).filter((f) => f.endsWith('.png')).length;
        } catch {
          return 0;
        }
      };
      await until(`the frames to reach ${site}`, () => frames() === 4, 30_000);
      expect(readdirSync(shot)).toEqual(['v001']);
    }

    // The user turns it off; a restart keeps that choice.
    await admin.configurePlugin('gfs-sync', { state: 'disabled' });
    await stopProcess(first.child);
    const second = await dev(data);
    expect(second.out()).toMatch(/^ +gfs-sync disabled /m);
    const again = new DroverClient({ url: second.url, token });
    expect((await again.getPlugin('gfs-sync')).state).toBe('disabled');
  }, 180_000);
});
