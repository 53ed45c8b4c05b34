import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DroverClient } from '../../src/client/index.js';
import { CLI, until, untilJobState } from '../farm.js';

/**
 * `drover dev` protects a newcomer's first multi-region render: gfs-sync starts global on its
 * simulated GFS, so a job's output folder is made and synced to every region before any
 * frame renders. A state the user chose later is kept across restarts. The real `drover dev`
 * process, its real worker processes, its real replicator.
 */

const running: ChildProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map(stop));
}, 60_000);

function stop(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const force = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', () => {
      clearTimeout(force);
      done();
    });
    child.kill('SIGTERM');
  });
}

/** Starts `drover dev` on `data`; resolves with it, the manager's address and what it printed. */
async function dev(data: string): Promise<{ child: ChildProcess; url: string; out: () => string }> {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'dev',
      '--data',
      data,
      '--port',
      '0',
      '--regions',
      'us-west-2,eu-west-2',
      '--workers-per-region',
      '1',
      '--sync-delay',
      '1',
      '--headless',
    ],
    { cwd: data, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  running.push(child);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  await until('the farm to start', () => out.includes('Ctrl-C stops the farm.'), 60_000);
  const url = /manager\s+(http:\S+)/.exec(out)![1]!;
  return { child, url, out: () => out };
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
    await stop(first.child);
    const second = await dev(data);
    expect(second.out()).toMatch(/^ +gfs-sync disabled /m);
    const again = new DroverClient({ url: second.url, token });
    expect((await again.getPlugin('gfs-sync')).state).toBe('disabled');
  }, 180_000);
});
