import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../src/api/routes.js';
import { DroverClient } from '../../src/client/index.js';
import type { Version } from '../../src/core/versions.js';
import { startFarm, until, untilJobState, type TestFarm } from '../farm.js';

/**
 * Publishing on a farm of real processes (issue 15): real worker processes render with the
 * built-in renderer and a stand-in `blender` (a shell script that renders from the scene it
 * is given), the real `review` app makes the media with Debian's ffmpeg, and ffprobe checks
 * the movie.
 */

const hasFfmpeg = existsSync('/usr/bin/ffmpeg') && existsSync('/usr/bin/ffprobe');
const PRODUCT = 'demo/seq010/sh010/beauty';

describe.skipIf(!hasFfmpeg)('publishing renders as versions', () => {
  let farm: TestFarm;
  let publishRoot: string;
  const version = async (id: string): Promise<Version> =>
    (await farm.client.call(routes.getVersion, { params: { id } })).version;
  const settled = (id: string) =>
    until(
      `version ${id} to leave rendering`,
      async () => {
        const v = await version(id);
        return v.status !== 'rendering' && (v.movie || v.status !== 'pending review')
          ? v
          : undefined;
      },
      120_000,
    );
  const versionOf = async (jobId: string) => {
    const job = await farm.client.getJob(jobId);
    const id = job.extraInfo.DROVER_VERSION;
    expect(id).toBeDefined();
    return id!;
  };

  beforeAll(async () => {
    farm = await startFarm();
    publishRoot = join(farm.dir, 'publish');
    mkdirSync(publishRoot);
    await farm.manager.farm.plugins!.configure('publish', {
      state: 'global',
      config: { roots: publishRoot },
    });
    farm.startWorker('w1', ['--slots', '2']);
    farm.startWorker('w2', ['--slots', '2']);
  }, 60_000);
  afterAll(async () => {
    await farm?.stop();
  });

  it('renders into v001, becomes pending review with a thumbnail and a 24-frame movie; v002 next', async () => {
    const job = await farm.client.submitJob({
      name: 'beauty',
      plugin: 'builtin-render',
      pluginInfo: { width: 64, height: 36 },
      frames: '1-24',
      chunkSize: 4,
      publish: PRODUCT,
      comment: 'first light',
    });
    const folder = join(publishRoot, PRODUCT, 'v001');
    expect(job.outputDirectories).toEqual([folder]);
    const id = await versionOf(job.id);
    expect((await untilJobState(farm.client, job.id, ['completed', 'failed'], 90_000)).state).toBe(
      'completed',
    );
    const v = await settled(id);
    expect(v).toMatchObject({
      product: PRODUCT,
      name: 'v001',
      status: 'pending review',
      jobId: job.id,
      folder,
      comment: 'first light',
      missingFrames: [],
      error: '',
    });
    expect(v.representations).toEqual([
      expect.objectContaining({
        name: 'frame',
        ext: 'png',
        frames: '1-24',
        padding: 4,
        fileCount: 24,
      }),
    ]);
    // Rendered straight into the version folder: nothing anywhere else.
    expect(readdirSync(folder).filter((f) => f.endsWith('.png'))).toHaveLength(24);
    expect(v.thumbnail && statSync(v.thumbnail).size).toBeGreaterThan(0);
    const frames = execFileSync('/usr/bin/ffprobe', [
      '-v',
      'error',
      '-count_frames',
      '-select_streams',
      'v:0',
      '-show_entries',
      'stream=nb_read_frames,codec_name',
      '-of',
      'csv=p=0',
      v.movie!,
    ])
      .toString()
      .trim();
    expect(frames).toBe('h264,24');

    // The movie over HTTP, with a byte range (a browser's <video> seeks this way).
    const url = `${farm.manager.url}/api/v1/versions/${id}/movie?token=${farm.manager.adminToken!}`;
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-type')).toBe('video/mp4');
    const size = Number(whole.headers.get('content-length'));
    expect(size).toBe(statSync(v.movie!).size);
    await whole.arrayBuffer();
    const part = await fetch(url, { headers: { range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${size}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(
      readFileSync(v.movie!).subarray(100, 200),
    );
    expect((await fetch(url, { headers: { range: `bytes=${size}-` } })).status).toBe(416);
    const thumb = await fetch(
      `${farm.manager.url}/api/v1/versions/${id}/thumbnail?token=${farm.manager.adminToken!}`,
    );
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get('content-type')).toBe('image/jpeg');

    // A second submission makes v002 in its own folder.
    const second = await farm.client.submitJob({
      plugin: 'builtin-render',
      pluginInfo: { width: 32, height: 18 },
      frames: '1-3',
      publish: PRODUCT,
    });
    expect(second.outputDirectories).toEqual([join(publishRoot, PRODUCT, 'v002')]);
    const v2 = await settled(await versionOf(second.id));
    expect(v2).toMatchObject({ name: 'v002', status: 'pending review' });

    // Unapproved versions are hidden by default; approving shows v001.
    const listed = async (all: boolean) =>
      (
        await farm.client.call(routes.listVersions, {
          query: { product: PRODUCT, all: all ? 'true' : 'false' },
        })
      ).versions.map((x) => x.name);
    expect(await listed(false)).toEqual([]);
    expect(await listed(true)).toEqual(['v002', 'v001']);
    const approved = await farm.client.call(routes.approveVersion, {
      params: { id },
      body: { comment: 'lovely' },
    });
    expect(approved.version).toMatchObject({ status: 'approved', reviewComment: 'lovely' });
    expect(await listed(false)).toEqual(['v001']);
    const latest = await farm.client.call(routes.latestVersion, { query: { product: PRODUCT } });
    expect(latest.version?.name).toBe('v001');
    const events = await farm.client.listEvents({ type: 'version.approved' });
    expect(events.map((e) => e.data.version)).toContain('v001');
  }, 240_000);

  it('refuses a submission whose next version folder exists already, and moves on', async () => {
    const product = 'demo/seq010/sh020/beauty';
    const first = await farm.client.submitJob({
      plugin: 'builtin-render',
      pluginInfo: { width: 16, height: 16 },
      frames: '1',
      publish: product,
    });
    await untilJobState(farm.client, first.id, ['completed'], 60_000);
    // Someone made v002's folder by hand: the next job must not write into it.
    const stray = join(publishRoot, product, 'v002');
    mkdirSync(stray);
    writeFileSync(join(stray, 'precious.txt'), 'do not touch');
    await expect(
      farm.client.submitJob({ plugin: 'builtin-render', frames: '1', publish: product }),
    ).rejects.toMatchObject({ code: 'conflict' });
    expect(readdirSync(stray)).toEqual(['precious.txt']);
    const all = await farm.client.call(routes.listVersions, { query: { product, all: 'true' } });
    expect(all.versions.find((x) => x.name === 'v002')).toMatchObject({ status: 'failed' });
    const third = await farm.client.submitJob({
      plugin: 'builtin-render',
      frames: '1',
      publish: product,
    });
    expect(third.outputDirectories).toEqual([join(publishRoot, product, 'v003')]);
    // Bad product paths are refused, naming the field; nothing is allocated.
    await expect(
      farm.client.submitJob({ plugin: 'builtin-render', frames: '1', publish: 'a/../b' }),
    ).rejects.toMatchObject({ code: 'invalid_input', field: 'publish' });
  }, 120_000);

  it('renders from a read-only scene snapshot; a missing frame makes the version incomplete', async () => {
    const tools = join(farm.dir, 'tools');
    mkdirSync(tools);
    const png = join(tools, 'frame.png');
    // A real PNG to stand in for each rendered frame: the built-in renderer's, if any.
    const rendered = join(publishRoot, PRODUCT, 'v001', 'frame_0001.png');
    writeFileSync(png, readFileSync(rendered));
    // A stand-in `blender`: renders from the scene it is given (`-b`), beside it (Blender's
    // `//../` output), skipping the frame the scene says, and says which scene it used.
    const blender = join(tools, 'blender');
    writeFileSync(
      blender,
      `#!/bin/sh
scene=""; s=""; e=""
while [ $# -gt 0 ]; do
  case "$1" in
    -b) scene=$2; shift 2;;
    -s) s=$2; shift 2;;
    -e) e=$2; shift 2;;
    *) shift;;
  esac
done
echo "SCENE=$scene"
out=$(dirname "$scene")/..
skip=$(sed -n 's/^skip //p' "$scene")
for f in $(seq "$s" "$e"); do
  [ "$f" = "$skip" ] && continue
  cp "${png}" "$out/beauty.$(printf %04d "$f").png"
done
`,
    );
    chmodSync(blender, 0o755);
    const scene = join(farm.dir, 'shot.blend');
    writeFileSync(scene, 'skip 3\n');
    const product = 'demo/seq010/sh030/beauty';

    // An unreadable scene fails the submission, naming the setting and the path.
    await expect(
      farm.client.submitJob({
        plugin: 'Blender',
        pluginInfo: { sceneFile: join(farm.dir, 'nope.blend'), executable: blender },
        frames: '1-5',
        publish: product,
      }),
    ).rejects.toMatchObject({ code: 'invalid_input', field: 'pluginInfo.sceneFile' });

    const job = await farm.client.submitJob({
      plugin: 'Blender',
      pluginInfo: { sceneFile: scene, executable: blender },
      frames: '1-5',
      publish: product,
    });
    const folder = join(publishRoot, product, 'v001');
    const copy = join(folder, 'scene', 'shot.blend');
    expect(job.pluginInfo.sceneFile).toBe(copy);
    expect(statSync(copy).mode & 0o777).toBe(0o444);
    // The artist keeps working on the original: the version's scene does not change.
    writeFileSync(scene, 'skip 4\n');
    await untilJobState(farm.client, job.id, ['completed', 'failed'], 60_000);
    const v = await settled(await versionOf(job.id));
    expect(v).toMatchObject({
      name: 'v001',
      status: 'incomplete',
      missingFrames: [3],
      scene: {
        source: scene,
        path: copy,
        sha256: createHash('sha256').update('skip 3\n').digest('hex'),
      },
    });
    expect(v.error).toContain('3');
    expect(readFileSync(copy, 'utf8')).toBe('skip 3\n');
    const log = await farm.client.taskLog(job.id, 0);
    expect(log.chunks.map((c) => c.text).join('')).toContain(`SCENE=${copy}`);
    expect(v.representations.find((r) => r.name === 'beauty')).toMatchObject({
      frames: '1,2,4,5',
      fileCount: 4,
    });
  }, 120_000);

  it('publishes an existing folder without copying; approval is the submitter’s or an admin’s', async () => {
    const auth = farm.manager.auth!;
    const alice = new DroverClient({
      url: farm.manager.url,
      token: (await auth.createToken('alice', 'user')).secret,
    });
    const bob = new DroverClient({
      url: farm.manager.url,
      token: (await auth.createToken('bob', 'user')).secret,
    });
    const dir = join(publishRoot, 'incoming', 'plate');
    mkdirSync(dir, { recursive: true });
    const png = readFileSync(join(publishRoot, PRODUCT, 'v001', 'frame_0001.png'));
    for (let f = 1001; f <= 1010; f++) writeFileSync(join(dir, `plate.${f}.png`), png);
    const outside = join(farm.dir, 'elsewhere');
    mkdirSync(outside);
    await expect(
      alice.call(routes.publishFolder, { body: { folder: outside, product: 'demo/plate' } }),
    ).rejects.toMatchObject({ code: 'invalid_input', field: 'folder' });

    const { version: published } = await alice.call(routes.publishFolder, {
      body: { folder: dir, product: 'demo/plate', comment: 'scanned plate' },
    });
    expect(published).toMatchObject({
      name: 'v001',
      folder: dir,
      submittedBy: 'alice',
      jobId: null,
    });
    expect(published.representations[0]).toMatchObject({ frames: '1001-1010', fileCount: 10 });
    const v = await settled(published.id);
    expect(v.status).toBe('pending review');
    expect(readdirSync(dir).filter((f) => f.endsWith('.png'))).toHaveLength(10);

    await expect(
      bob.call(routes.approveVersion, { params: { id: v.id }, body: {} }),
    ).rejects.toMatchObject({ code: 'forbidden' });
    const rejected = await alice.call(routes.rejectVersion, {
      params: { id: v.id },
      body: { comment: 'wrong plate' },
    });
    expect(rejected.version).toMatchObject({ status: 'rejected', reviewedBy: 'alice' });
    const products = (await bob.call(routes.listProducts, { query: { prefix: 'demo' } })).products;
    expect(products.map((p) => p.name)).toContain('demo/plate');
  }, 120_000);
  it('fails a version whose job fails; a failed review job leaves pending review with its error', async () => {
    const marker = join(farm.dir, 'fixed');
    const job = await farm.client.submitJob({
      plugin: 'CommandLine',
      pluginInfo: {
        executable: process.execPath,
        arguments: [
          '-e',
          'process.exit(require("fs").existsSync(process.argv[1]) ? 0 : 3)',
          marker,
        ],
      },
      frames: '1',
      taskRetries: 0,
      jobErrorLimit: 1,
      publish: 'demo/broken/render',
    });
    await untilJobState(farm.client, job.id, ['failed'], 60_000);
    const failed = await settled(await versionOf(job.id));
    expect(failed).toMatchObject({ name: 'v001', status: 'failed' });
    expect(failed.error).toContain(job.id);
    // Requeued once the problem is fixed, the job finishes: its version is scanned again (it
    // wrote no frames, so it is incomplete now, no longer failed).
    writeFileSync(marker, '');
    await farm.client.jobAction(job.id, 'requeue');
    await untilJobState(farm.client, job.id, ['completed'], 60_000);
    const rescanned = await until(
      'the version to be scanned again',
      async () => {
        const x = await farm.client.call(routes.getVersion, { params: { id: failed.id } });
        return x.version.status === 'incomplete' ? x.version : undefined;
      },
      30_000,
    );
    expect(rescanned.missingFrames).toEqual([1]);

    // Frames that are not images: the review job's ffmpeg fails on them.
    const dir = join(publishRoot, 'incoming', 'garbage');
    mkdirSync(dir, { recursive: true });
    for (let f = 1; f <= 3; f++) writeFileSync(join(dir, `junk.${f}.png`), 'not a png');
    const { version } = await farm.client.call(routes.publishFolder, {
      body: { folder: dir, product: 'demo/broken/review' },
    });
    expect(version.reviewJobId).not.toBeNull();
    await untilJobState(farm.client, version.reviewJobId!, ['failed'], 90_000);
    const v = await until(
      'the version to show its review error',
      async () => {
        const x = await farm.client.call(routes.getVersion, { params: { id: version.id } });
        return x.version.status === 'pending review' ? x.version : undefined;
      },
      30_000,
    );
    expect(v.error).toMatch(/review job .* failed/);
    expect(v.movie).toBeNull();
  }, 180_000);
});
