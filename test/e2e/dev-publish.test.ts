import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, startDev, stopProcess } from '../farm.js';

/**
 * The "done when", as a newcomer types it: on `drover dev` (two regions, a simulated
 * GFS that syncs after a second), `drover submit --plugin builtin-render --frames 1-24
 * --publish … --wait` leaves v001 pending review with its movie; `drover version approve`
 * makes it show in `drover versions`. The real CLI, manager, workers, replicator and ffmpeg.
 */

const run = promisify(execFile);
const running: ChildProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map(stopProcess));
}, 60_000);

const hasFfmpeg = existsSync('/usr/bin/ffmpeg');

describe.runIf(process.platform === 'linux' && hasFfmpeg)('drover dev: publishing', () => {
  it('publishes a render as v001 pending review, approves it, lists it', async () => {
    const data = mkdtempSync(join(tmpdir(), 'drover-dev-publish-'));
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
    expect(farm.out()).toMatch(/^ +publish +versions go to \/gfs\/publish/m);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DROVER_URL: farm.url,
      DROVER_TOKEN_FILE: join(data, 'admin-token'),
    };
    delete env.DROVER_TOKEN;
    const drover = (...args: string[]) =>
      run(process.execPath, [CLI, ...args], { env, timeout: 240_000 });

    const submitted = await drover(
      'submit',
      '--plugin',
      'builtin-render',
      '--frames',
      '1-24',
      '--chunk-size',
      '4',
      '--info',
      'width=64',
      '--info',
      'height=36',
      '--publish',
      'demo/seq010/sh010/beauty',
      '--wait',
    );
    expect(submitted.stderr).toMatch(
      /version demo\/seq010\/sh010\/beauty v001 \(([0-9a-f]+)\): pending review/,
    );
    const id = /v001 \(([0-9a-f]+)\)/.exec(submitted.stderr)![1]!;

    // Every frame in the one version folder, at every site: no `v001[#S=…]` beside it.
    for (const site of readdirSync(join(data, 'gfs', 'sites'))) {
      const product = join(
        data,
        'gfs',
        'sites',
        site,
        'publish',
        'demo',
        'seq010',
        'sh010',
        'beauty',
      );
      expect(readdirSync(product)).toEqual(['v001']);
    }
    const shown = JSON.parse((await drover('version', 'show', id, '--json')).stdout) as {
      movie: string;
      representations: { frames: string }[];
    };
    expect(shown.movie).toBe('/gfs/publish/demo/seq010/sh010/beauty/v001/review/beauty_v001.mp4');
    expect(shown.representations[0]?.frames).toBe('1-24');

    expect((await drover('versions')).stdout).toMatch(/no approved versions/);
    expect((await drover('versions', '--all')).stdout).toMatch(/v001 +pending review/);
    expect((await drover('version', 'approve', id, '--comment', 'lovely')).stdout).toBe(
      'demo/seq010/sh010/beauty v001: approved\n',
    );
    expect((await drover('versions', 'demo/seq010/sh010/beauty')).stdout).toMatch(/v001 +approved/);
  }, 300_000);
});
