/**
 * The Versions page in a real headless Chromium against a real manager (in this process, on
 * a real SQLite file) with a real worker process that runs the `review` application plugin,
 * which runs Debian's ffmpeg. The versions are recorded through the manager's store (the
 * publish flow that records them is tested end to end elsewhere); their review media are
 * made by a real review job, and the page plays the movie through the manager's media route.
 *
 * Needs /usr/bin/chromium (see monitor.test.ts), /usr/bin/ffmpeg and a built dist/ (the
 * worker runs dist/worker/apps/review/main.js).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reviewOutputFiles } from '../../src/core/app-settings.js';
import { detectSequences, formatSequencePattern } from '../../src/core/sequences.js';
import { formatFrameList } from '../../src/core/frames.js';
import { versionName, type Version } from '../../src/core/versions.js';
import { readdir, stat } from 'node:fs/promises';
import { startFarm, until, untilJobState, type TestFarm } from '../farm.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CHROMIUM = process.env.DROVER_CHROMIUM ?? '/usr/bin/chromium';
const FFMPEG = '/usr/bin/ffmpeg';
const BUILT = join(ROOT, 'dist', 'web', 'index.html');
const SHOTS = join(ROOT, 'test-artifacts', 'screenshots');
const PRODUCT = 'demo/seq010/sh010/beauty';
const FRAMES = 24;
const run = promisify(execFile);

async function launch(): Promise<Browser> {
  for (const [path, what] of [
    [CHROMIUM, 'Chromium (apt-get install -y chromium)'],
    [FFMPEG, 'ffmpeg (apt-get install -y ffmpeg)'],
    [BUILT, 'the built monitor (npm run build)'],
  ] as const) {
    if (!existsSync(path))
      throw new Error(`${path} is missing: the Versions page test needs ${what}`);
  }
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

async function waitText(locator: Locator, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  return until(
    `text ${pattern}`,
    async () => {
      const text =
        (await locator
          .first()
          .textContent({ timeout: 1_000 })
          .catch(() => null)) ?? '';
      return pattern.test(text) ? text : undefined;
    },
    timeoutMs,
  );
}

/** What the page's `<video>` says about itself (evaluated in Chromium). */
interface VideoState {
  readyState: number;
  currentTime: number;
  duration: number;
  ended: boolean;
  paused: boolean;
  error: string | null;
  videoWidth: number;
}
const VIDEO_STATE = `(() => {
  const v = document.querySelector('[data-testid="review-movie"]');
  if (!v) return null;
  return { readyState: v.readyState, currentTime: v.currentTime, duration: v.duration,
    ended: v.ended, paused: v.paused, error: v.error && (v.error.message || String(v.error.code)),
    videoWidth: v.videoWidth };
})()`;

describe('the Versions page in Chromium', () => {
  let farm: TestFarm;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  let v1: Version;
  let publishRoot: string;

  /** A new version of PRODUCT through the store, as publish-on-submit makes it. */
  async function createVersion(comment: string): Promise<Version> {
    return farm.manager.farm.store.versions.create({
      product: PRODUCT,
      submittedBy: 'ana',
      comment,
      folderOf: (n) => join(publishRoot, PRODUCT, versionName(n)),
    });
  }

  beforeAll(async () => {
    browser = await launch();
    farm = await startFarm();
    publishRoot = join(farm.dir, 'publish');
    farm.startWorker('review-1');

    // v001: 24 frames from 1001 (ffmpeg's test pattern), its review media made by a review
    // job on the real worker, then recorded as publish does once the review job is done.
    v1 = await createVersion('first light');
    mkdirSync(v1.folder, { recursive: true });
    await run(FFMPEG, [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc=size=320x180:rate=24',
      '-frames:v',
      String(FRAMES),
      '-start_number',
      '1001',
      join(v1.folder, 'beauty.%04d.png'),
    ]);
    const pluginInfo = {
      inputDirectory: v1.folder,
      inputPattern: 'beauty.####.png',
      firstFrame: 1001,
      lastFrame: 1000 + FRAMES,
      outputDirectory: join(v1.folder, 'review'),
      outputName: 'beauty_v001',
      product: PRODUCT,
      version: 1,
    };
    const job = await farm.client.submitJob({
      name: `${PRODUCT} v001 [Review]`,
      plugin: 'review',
      frames: '0',
      pluginInfo,
    });
    await untilJobState(farm.client, job.id, ['completed', 'failed'], 90_000);
    expect((await farm.client.getJob(job.id)).state).toBe('completed');
    const media = reviewOutputFiles({ ...pluginInfo, webm: true });
    const listed = await Promise.all(
      (await readdir(v1.folder))
        .filter((n) => n.endsWith('.png'))
        .map(async (name) => ({
          name,
          size: (await stat(join(v1.folder, name))).size,
        })),
    );
    const [seq] = detectSequences(listed).sequences;
    v1 = await farm.manager.farm.store.versions.update(
      v1.id,
      {
        status: 'pending review',
        thumbnail: media.thumbnail,
        movie: media.mp4,
        representations: [
          {
            name: 'beauty',
            ext: 'png',
            pattern: formatSequencePattern(seq!, 'hash'),
            frames: formatFrameList(seq!.frames),
            first: seq!.first,
            last: seq!.last,
            padding: seq!.padding,
            fileCount: seq!.files.length,
            bytes: seq!.bytes,
          },
        ],
      },
      'version.ready',
    );

    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await farm?.stop();
  });

  it('hides unapproved versions until the switch shows them, and follows new ones live', async () => {
    await page.goto(
      `${farm.manager.url}/versions?token=${encodeURIComponent(farm.manager.adminToken!)}`,
    );
    await waitText(page.getByTestId('feed-status'), /^live$/);
    await waitText(page.getByTestId('version-count'), /^0 versions$/);
    await page.getByTestId('no-versions').waitFor();
    await page.getByTestId('show-unapproved').check();
    await waitText(page.getByTestId('version-count'), /^1 version$/);
    // A second version published while the page is open appears from its event.
    await createVersion('more samples');
    await waitText(page.getByTestId('version-count'), /^2 versions$/);
    const cards = page.getByTestId('version-card');
    expect(
      await Promise.all((await cards.all()).map((c) => c.getAttribute('data-version'))),
    ).toEqual([`${PRODUCT} v002`, `${PRODUCT} v001`]);
    // v001 has its thumbnail; the image loaded through the media route.
    const thumb = page.locator(`[data-version="${PRODUCT} v001"] img`);
    await until('the thumbnail to load', () =>
      thumb.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth > 0),
    );
    expect(errors).toEqual([]);
  });

  it('plays the review movie in the page', async () => {
    await page.locator(`[data-version="${PRODUCT} v001"]`).click();
    await page.getByTestId('review-movie').waitFor();
    const ready = await until(
      'the movie to be playable',
      async () => {
        const s = await page.evaluate<VideoState | null>(VIDEO_STATE);
        return s && s.readyState >= 2 ? s : undefined;
      },
      20_000,
    );
    expect(ready.error).toBeNull();
    expect(ready.videoWidth).toBe(320);
    expect(ready.duration).toBeCloseTo(FRAMES / 24, 1);
    await page.evaluate(`(() => {
      const v = document.querySelector('[data-testid="review-movie"]');
      v.muted = true;
      return v.play();
    })()`);
    const played = await until(
      'the movie to advance',
      async () => {
        const s = (await page.evaluate<VideoState | null>(VIDEO_STATE))!;
        return s.ended || s.currentTime > 0.3 ? s : undefined;
      },
      20_000,
    );
    expect(played.error).toBeNull();
    await page.screenshot({ path: join(SHOTS, 'versions.png') });
    // The VP9 WebM fallback the page also offers plays too (for browsers without H.264).
    const webm = await page.evaluate<{
      readyState: number;
      error: string | null;
      type: string;
    }>(`(async () => {
      const src = document.querySelector('[data-testid="review-movie"] source[type="video/webm"]').src;
      const v = document.createElement('video');
      v.muted = true;
      v.src = src;
      const deadline = Date.now() + 15000;
      while (v.readyState < 2 && !v.error && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const type = (await fetch(src, { headers: { range: 'bytes=0-3' } })).headers.get('content-type');
      return { readyState: v.readyState, error: v.error && String(v.error.code), type };
    })()`);
    expect(webm).toEqual({ readyState: expect.any(Number), error: null, type: 'video/webm' });
    expect(webm.readyState).toBeGreaterThanOrEqual(2);
    expect(errors).toEqual([]);
  });

  it('approves a version; the switch then hides only the unapproved one', async () => {
    await page.getByRole('button', { name: 'Approve', exact: true }).click();
    await waitText(page.getByTestId('version-status'), /^approved$/);
    expect((await farm.manager.farm.store.versions.fetch(v1.id))?.status).toBe('approved');

    await page.getByTestId('show-unapproved').uncheck();
    await waitText(page.getByTestId('version-count'), /^1 version$/);
    expect(await page.getByTestId('version-card').getAttribute('data-version')).toBe(
      `${PRODUCT} v001`,
    );
    await page.getByTestId('show-unapproved').check();
    await waitText(page.getByTestId('version-count'), /^2 versions$/);
    expect(errors).toEqual([]);
  });

  it('shows no approve or reject buttons to a user who did not submit the version', async () => {
    const { secret } = await farm.manager.auth!.createToken('bob', 'user');
    const context = await browser.newContext();
    try {
      const other = await context.newPage();
      await other.goto(`${farm.manager.url}/versions?token=${encodeURIComponent(secret)}`);
      await other.getByTestId('show-unapproved').check();
      await waitText(other.getByTestId('version-count'), /^2 versions$/);
      await other.locator(`[data-version="${PRODUCT} v001"]`).click();
      await waitText(other.getByTestId('version-status'), /^approved$/);
      expect(await other.getByRole('button', { name: 'Approve', exact: true }).count()).toBe(0);
      expect(await other.getByRole('button', { name: 'Reject', exact: true }).count()).toBe(0);
      // The API agrees: bob may not review ana's version.
      const res = await fetch(`${farm.manager.url}/api/v1/versions/${v1.id}/reject`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(res.status).toBe(403);
    } finally {
      await context.close();
    }
  });
});
