/**
 * The web monitor in a real headless Chromium against a real manager (in this process, on a
 * real SQLite file) with real worker processes running builtin-render.
 *
 * Chromium comes from Debian (`apt-get install -y chromium`; CI installs it). playwright-core
 * drives it and never downloads a browser. Without /usr/bin/chromium these tests fail, on
 * purpose: a monitor nobody looked at in a browser is not tested.
 *
 * Screenshots of every page go to test-artifacts/screenshots/; the 1,000-job measurement is
 * printed and written to test-artifacts/monitor-perf.json (figures quoted in web/README.md).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DroverClient } from '../../src/client/index.js';
import { createSimulatedGfsLayout, Replicator, siteRoot } from '../../src/gfs/simulated/index.js';
import { startManager, type RunningManager } from '../../src/manager/server.js';
import { FAST, startFarm, until, type TestFarm } from '../farm.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CHROMIUM = process.env.DROVER_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'test-artifacts', 'screenshots');
const BUILT = join(ROOT, 'dist', 'web', 'index.html');

async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}. The monitor's browser tests need it: ` +
        'apt-get update && apt-get install -y chromium (CI installs it; DROVER_CHROMIUM overrides the path).',
    );
  }
  if (!existsSync(BUILT)) {
    throw new Error(`The monitor is not built (${BUILT} is missing): run npm run build.`);
  }
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** Opens a page that fails the test on any uncaught error in the monitor. */
async function openPage(browser: Browser, errors: string[]): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // A refused connection while the manager restarts is expected noise.
    if (
      msg.type() === 'error' &&
      !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(msg.text())
    ) {
      errors.push(`console: ${msg.text()}`);
    }
  });
  return page;
}

/** Waits until the locator's text matches. */
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

async function live(page: Page): Promise<void> {
  await waitText(page.getByTestId('feed-status'), /^live$/);
}

/** The admin token when the manager runs with authentication (it does by default). */
function tokenOf(manager: RunningManager): { token?: string } {
  const token = (manager as { adminToken?: string }).adminToken;
  return token ? { token } : {};
}

function authOf(manager: RunningManager): { headers: Record<string, string> } {
  const { token } = tokenOf(manager);
  return { headers: token ? { authorization: `Bearer ${token}` } : {} };
}

/** A monitor page's address; the monitor keeps a `?token=` in the browser and drops it from the URL. */
function monitor(manager: RunningManager, path: string): string {
  const { token } = tokenOf(manager);
  return `${manager.url}${path}${token ? `?token=${encodeURIComponent(token)}` : ''}`;
}

/**
 * The few browser globals the in-page functions below use: this tsconfig has no DOM lib (the
 * rest of the program is Node code), and those functions run in Chromium, not here.
 */
interface ScrollBox {
  scrollTop: number;
  scrollHeight: number;
  clientHeight: number;
}
interface InPage {
  document: { querySelector(selector: string): ScrollBox | null };
  requestAnimationFrame(callback: () => void): number;
}

const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });

describe('the web monitor in Chromium, on a farm of real processes', () => {
  let farm: TestFarm;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  let first: string;
  const firstName = 'spheres [monitor]';

  beforeAll(async () => {
    browser = await launch();
    farm = await startFarm();
    farm.startWorker('west-1', ['--region', 'us-west-2', '--pools', 'main']);
    farm.startWorker('east-1', ['--region', 'eu-west-2', '--groups', 'gpu']);
    page = await openPage(browser, errors);
  });

  afterAll(async () => {
    await browser?.close();
    await farm?.stop();
  });

  it('serves the monitor at / and shows a job submitted through the API without a reload', async () => {
    const index = await fetch(`${farm.manager.url}/jobs/anything`);
    expect(index.headers.get('content-type')).toMatch(/text\/html/);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect((await fetch(`${farm.manager.url}/api/v1/nope`, authOf(farm.manager))).status).toBe(404);

    await page.goto(monitor(farm.manager, `/`));
    await live(page);
    await waitText(page.getByTestId('job-count'), /^0 of 0 jobs$/);

    const job = await farm.client.submitJob({
      name: firstName,
      batchName: 'shot010',
      user: 'ana',
      plugin: 'builtin-render',
      pluginInfo: { width: 160, height: 90, frameDelayMs: 250 },
      frames: '1-8',
      chunkSize: 2,
      priority: 70,
      outputDirectories: [join(farm.dir, 'renders', 'shot010')],
      extraInfo: { shot: 'sh010', artist: 'ana' },
      environment: { OCIO: '/studio/ocio/config.ocio' },
    });
    first = job.id;
    const link = page.getByRole('link', { name: firstName });
    await link.waitFor({ timeout: 10_000 });
    await waitText(page.getByTestId('job-count'), /^1 of 1 jobs$/);
    await shot(page, 'jobs');
    expect(errors).toEqual([]);
  });

  it('streams the event log as Server-Sent Events, resumable with Last-Event-ID', async () => {
    // The job above and the two workers' registrations make at least four events.
    const events = await until('four events in the log', async () => {
      const list = await farm.client.listEvents({ limit: 1000 });
      return list.length >= 4 ? list : undefined;
    });
    const from = events[events.length - 3]!.seq;
    const abort = new AbortController();
    const res = await fetch(`${farm.manager.url}/api/v1/events/stream`, {
      headers: { ...authOf(farm.manager).headers, 'last-event-id': String(from - 1) },
      signal: abort.signal,
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while ((text.match(/^id: /gm) ?? []).length < 3) text += (await reader.read()).value ?? '';
    abort.abort();
    expect(text).toMatch(/^retry: \d+\nevent: ready\ndata: \{"seq":\d+\}\n\n/);
    const first = events.find((e) => e.seq === from)!;
    expect(text).toContain(`id: ${from}\nevent: ${first.type}\ndata: ${JSON.stringify(first)}\n\n`);
    expect(text).not.toContain(`id: ${from - 1}\n`);
  });

  it('opens the job and watches its tasks complete on real workers, with a log and the latest frame', async () => {
    await page.getByRole('link', { name: firstName }).click();
    await page.waitForURL(`**/jobs/${first}`);
    await waitText(page.getByTestId('task-summary'), /^4\/4 done/, 30_000);
    const cells = page.locator('.task-cell');
    expect(await cells.count()).toBe(4);
    await until('four green task cells', async () => {
      return (await page.locator('.task-cell[data-state="completed"]').count()) === 4;
    });

    await cells.nth(1).click();
    const log = page.getByTestId('task-log');
    await waitText(log, /Rendering frame 3/);
    await waitText(log, /frame_0004\.png|Saved|Progress/);

    const img = page.getByTestId('latest-frame');
    await img.waitFor({ timeout: 10_000 });
    const natural = await until('the thumbnail to load', () =>
      img.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth || undefined),
    );
    expect(natural).toBe(160);
    // The extra info and environment are shown with the job.
    await waitText(page.locator('.job-detail'), /sh010[\s\S]*OCIO/);
    await shot(page, 'job-detail');

    // The thumbnail route refuses anything but images in the job's output folders.
    const api = `${farm.manager.url}/api/v1/jobs/${first}/outputs`;
    expect((await fetch(`${api}/0/frame_0001.png`, authOf(farm.manager))).status).toBe(200);
    expect((await fetch(`${api}/0/..%2F..%2Fdrover.db`, authOf(farm.manager))).status).toBe(400);
    expect((await fetch(`${api}/0/notes.txt`, authOf(farm.manager))).status).toBe(400);
    expect((await fetch(`${api}/1/frame_0001.png`, authOf(farm.manager))).status).toBe(404);
    expect(errors).toEqual([]);
  });

  it('follows a rendering task’s log live, then suspends and resumes the job from the UI', async () => {
    const job = await farm.client.submitJob({
      name: 'long [monitor]',
      plugin: 'builtin-render',
      pluginInfo: { width: 64, height: 36, frameDelayMs: 400 },
      frames: '1-60',
      chunkSize: 3,
      outputDirectories: [join(farm.dir, 'renders', 'long')],
    });
    await page.goto(monitor(farm.manager, `/jobs`));
    await live(page);
    // Select it on the Jobs page and suspend it with the toolbar.
    const row = page.locator('.tr', { has: page.getByRole('link', { name: 'long [monitor]' }) });
    await row.waitFor({ timeout: 10_000 });
    await page.goto(monitor(farm.manager, `/jobs/${job.id}`));
    await live(page);
    // A task that is rendering: its log grows while we watch.
    const rendering = page.locator('.task-cell[data-state="rendering"]').first();
    await rendering.waitFor({ timeout: 15_000 });
    await rendering.click();
    await page.getByText('following').waitFor({ timeout: 5_000 });
    await waitText(page.getByTestId('task-log'), /Rendering frame \d+ \(2\/3\)/, 10_000);

    // While it renders: both workers busy on it, by region, and the regions' counts.
    await page.getByRole('link', { name: 'Workers' }).click();
    const west = page.getByRole('region', { name: 'Region us-west-2' });
    await west.getByRole('link', { name: 'long [monitor]' }).waitFor({ timeout: 10_000 });
    await page
      .getByRole('region', { name: 'Region eu-west-2' })
      .getByRole('link', { name: 'long [monitor]' })
      .waitFor({ timeout: 10_000 });
    await waitText(west.locator('.badge').first(), /^rendering$/);
    await shot(page, 'workers');
    await page.getByRole('link', { name: 'Regions' }).click();
    await waitText(page.getByTestId('tasks-rendering-us-west-2'), /^1$/);
    // The GFS sites' replication lag: Hammerspace (gfs-sync's default) has no source for it.
    await waitText(page.getByTestId('replication-note'), /hammerspace GFS does not report/);
    await shot(page, 'regions');
    // With gfs-sync on a simulated GFS, it is read from the replicator's ledger: a folder
    // made in us-west-2 that has not reached eu-west-2 yet (the delay is 10 minutes).
    const gfsRoot = join(farm.dir, 'gfs-sim');
    await createSimulatedGfsLayout({ root: gfsRoot, sites: ['us-west-2', 'eu-west-2'] });
    const replicator = await Replicator.open({ root: gfsRoot, delayMs: 600_000 });
    mkdirSync(join(siteRoot(gfsRoot, 'us-west-2'), 'show', 'sh010'), { recursive: true });
    await replicator.tick();
    await farm.client.configurePlugin('gfs-sync', { config: { gfs: 'simulated', gfsRoot } });
    try {
      await waitText(page.getByTestId('replication-lag-eu-west-2'), /behind \(2 pending\)$/);
      await waitText(page.getByTestId('replication-lag-us-west-2'), /^caught up$/);
      await shot(page, 'regions-replication');
    } finally {
      await farm.client.configurePlugin('gfs-sync', {
        config: { gfs: 'hammerspace', gfsRoot: '' },
      });
      await replicator.stop();
    }

    await page.goto(monitor(farm.manager, `/jobs`));
    await live(page);
    await row.locator('input[type=checkbox]').check();
    await page
      .getByRole('toolbar', { name: 'Job actions' })
      .getByRole('button', { name: 'Suspend' })
      .click();
    await waitText(row.locator('.badge'), /^suspended$/);
    expect((await farm.client.getJob(job.id)).state).toBe('suspended');
    await shot(page, 'jobs-suspended');

    await row.getByRole('link').click();
    await page
      .getByRole('toolbar', { name: 'Job actions' })
      .getByRole('button', { name: 'Resume' })
      .click();
    await waitText(page.locator('.page-header .badge'), /^(queued|rendering)$/);
    const resumed = await farm.client.getJob(job.id);
    expect(['queued', 'rendering']).toContain(resumed.state);
    await farm.client.jobAction(job.id, 'suspend');
    expect(errors).toEqual([]);
  });

  it('lists workers by region and disables one from the UI', async () => {
    await page.goto(monitor(farm.manager, `/workers`));
    await live(page);
    const west = page.getByRole('region', { name: 'Region us-west-2' });
    await west.getByText('west-1').waitFor({ timeout: 10_000 });
    await page.getByRole('region', { name: 'Region eu-west-2' }).getByText('east-1').waitFor();
    await page.getByRole('button', { name: 'Disable west-1' }).click();
    await until('west-1 to be disabled', async () => {
      const w = await farm.client.getWorker('west-1');
      return !w.enabled;
    });
    await page.getByRole('button', { name: 'Enable west-1' }).waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Enable west-1' }).click();
    await until(
      'west-1 to be enabled',
      async () => (await farm.client.getWorker('west-1')).enabled,
    );
    expect(errors).toEqual([]);
  });

  it('changes a plugin setting through the generated form and shows a bad value inline', async () => {
    await page.goto(monitor(farm.manager, `/plugins`));
    await live(page);
    const form = page.getByRole('form', { name: 'Settings of gfs-sync' });
    const count = form.getByLabel('Iteration Count');
    await count.fill('501');
    await form.getByRole('button', { name: 'Save settings' }).click();
    const alert = form.getByRole('alert');
    await waitText(alert, /must be from 0 to 500/);
    expect(await count.getAttribute('aria-invalid')).toBe('true');
    expect((await farm.client.getPlugin('gfs-sync')).config.iterationCount).toBe(20);
    await shot(page, 'plugins-invalid');

    await count.fill('40');
    await form.getByLabel('Global File System').selectOption('local');
    await form.getByRole('button', { name: 'Save settings' }).click();
    await waitText(form.getByRole('status'), /Saved/);
    expect(await form.getByRole('alert').count()).toBe(0);
    const saved = await farm.client.getPlugin('gfs-sync');
    expect(saved.config).toMatchObject({ iterationCount: 40, gfs: 'local' });

    const state = page.getByRole('radiogroup', { name: 'State of gfs-sync' });
    await state.getByRole('radio', { name: 'global' }).click();
    await until(
      'gfs-sync to be global',
      async () => (await farm.client.getPlugin('gfs-sync')).state === 'global',
    );
    await shot(page, 'plugins');

    // A job with an output folder now waits for its folder job; its page shows the outcome.
    const job = await farm.client.submitJob({
      name: 'synced [monitor]',
      plugin: 'builtin-render',
      pluginInfo: { width: 160, height: 90, scene: 'mandelbrot' },
      frames: '1-4',
      chunkSize: 2,
      outputDirectories: [join(farm.dir, 'renders', 'synced')],
    });
    await page.goto(monitor(farm.manager, `/jobs/${job.id}`));
    await live(page);
    await page.getByText('Sync Complete').waitFor({ timeout: 20_000 });
    await page
      .getByRole('link', { name: /Make Directories/ })
      .first()
      .waitFor();
    await waitText(page.getByTestId('task-summary'), /^2\/2 done/, 20_000);
    await page.getByTestId('latest-frame').waitFor({ timeout: 10_000 });
    await page.locator('.task-cell').first().click();
    await waitText(page.getByTestId('task-log'), /task completed/);
    await shot(page, 'job-detail-gfs-sync');
    await farm.client.configurePlugin('gfs-sync', { state: 'disabled' });
    expect(errors).toEqual([]);
  });

  it('asks for a token when the manager wants one, and keeps it', async () => {
    const { token } = tokenOf(farm.manager);
    const fresh = await openPage(browser, errors); // a new context: no stored token
    try {
      await fresh.goto(`${farm.manager.url}/workers`);
      if (!token) {
        await live(fresh); // a manager without authentication needs none
        return;
      }
      const banner = fresh.locator('.token-banner');
      await waitText(banner, /needs a token/);
      await shot(fresh, 'token');
      await banner.getByLabel('Token').fill(token);
      await banner.getByRole('button', { name: 'Use token' }).click();
      await live(fresh);
      await fresh.getByRole('region', { name: 'Region us-west-2' }).waitFor({ timeout: 10_000 });
      expect(await fresh.locator('.token-banner').count()).toBe(0);
    } finally {
      await fresh.context().close();
    }
    // Refusals while it had no token are expected console noise (401s).
    errors.splice(0, errors.length, ...errors.filter((e) => !/401|Unauthorized/.test(e)));
    expect(errors).toEqual([]);
  });

  it('goes read-only for a read-only token: it shows the farm and offers no changes', async () => {
    await farm.client.submitJob({
      name: 'watched [monitor]',
      plugin: 'builtin-render',
      frames: '1',
      initialState: 'suspended',
      outputDirectories: [join(farm.dir, 'renders', 'watched')],
    });
    const { secret } = await farm.manager.auth!.createToken('viewer', 'read-only');
    const viewer = await openPage(browser, errors);
    try {
      await viewer.goto(`${farm.manager.url}/jobs?token=${encodeURIComponent(secret)}`);
      await live(viewer);
      await viewer.getByTestId('read-only').waitFor({ timeout: 10_000 });
      const suspend = viewer.getByRole('button', { name: 'Suspend' }).first();
      // Runs in Chromium; this tsconfig has no DOM lib, hence the typed globalThis.
      const pointerEvents = await suspend.evaluate(
        (b) =>
          (
            globalThis as unknown as { getComputedStyle(e: unknown): { pointerEvents: string } }
          ).getComputedStyle(b).pointerEvents,
      );
      expect(pointerEvents).toBe('none');
      await viewer.locator('.tr a[href^="/jobs/"]').first().waitFor({ timeout: 10_000 });
      await shot(viewer, 'read-only');
    } finally {
      await viewer.context().close();
    }
  });

  it('shows the event log live', async () => {
    await page.goto(monitor(farm.manager, `/events`));
    await live(page);
    await page.locator('.tr .event-type', { hasText: 'job.submitted' }).first().waitFor();
    const job = await farm.client.submitJob({
      name: 'held [monitor]',
      plugin: 'builtin-render',
      frames: '1',
      initialState: 'suspended',
      outputDirectories: [join(farm.dir, 'renders', 'held')],
    });
    await page.locator(`.tr a[href="/jobs/${job.id}"]`).first().waitFor({ timeout: 10_000 });
    await page.getByLabel('Kind').selectOption('worker');
    await waitText(page.getByTestId('event-count'), /^\d+ of \d+ events$/);
    await page.getByLabel('Kind').selectOption('all');
    await shot(page, 'events');
    expect(errors).toEqual([]);
  });
});

describe('the web monitor with 1,000 jobs, and across a manager restart', () => {
  let manager: RunningManager;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'drover-monitor-'));

  beforeAll(async () => {
    browser = await launch();
    manager = await startManager({
      dataDir: dir,
      port: 0,
      settings: FAST,
      logger: pino({ level: 'silent' }),
    });
    page = await openPage(browser, errors);
  });

  afterAll(async () => {
    await browser?.close();
    await manager?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reconnects after a manager restart and refetches what it shows', async () => {
    const client = new DroverClient({ url: manager.url, ...tokenOf(manager) });
    await client.submitJob({ name: 'before restart', plugin: 'builtin-render', pool: 'nobody' });
    await page.goto(monitor(manager, `/jobs`));
    await live(page);
    await page.getByRole('link', { name: 'before restart' }).waitFor({ timeout: 10_000 });

    const port = Number(new URL(manager.url).port);
    await manager.close();
    await waitText(page.getByTestId('feed-status'), /reconnecting/);
    manager = await startManager({
      dataDir: dir,
      port,
      settings: FAST,
      logger: pino({ level: 'silent' }),
    });
    // Submitted while the page is still reconnecting: the reload on `ready` brings it in.
    await new DroverClient({ url: manager.url, ...tokenOf(manager) }).submitJob({
      name: 'after restart',
      plugin: 'builtin-render',
      pool: 'nobody',
    });
    await page.getByRole('link', { name: 'after restart' }).waitFor({ timeout: 15_000 });
    await live(page);
    expect(errors).toEqual([]);
  });

  it('renders and scrolls 1,000 jobs of 10 tasks and a 10,000-task job without freezing', async () => {
    const client = new DroverClient({ url: manager.url, ...tokenOf(manager) });
    // 998 more jobs (two exist), ten tasks each, in no pool a worker serves: 10,000 tasks.
    const started = Date.now();
    const names: string[] = [];
    for (let i = 0; i < 998; i += 25) {
      await Promise.all(
        Array.from({ length: Math.min(25, 998 - i) }, (_, k) => {
          const n = i + k;
          names.push(`bulk ${String(n).padStart(4, '0')}`);
          return client.submitJob({
            name: `bulk ${String(n).padStart(4, '0')}`,
            batchName: `batch ${n % 17}`,
            user: ['ana', 'bo', 'cy', 'dee'][n % 4]!,
            plugin: 'builtin-render',
            frames: '1-10',
            priority: n % 101,
            pool: 'nobody',
            ...(n % 7 === 0 ? { initialState: 'suspended' as const } : {}),
          });
        }),
      );
    }
    const submitMs = Date.now() - started;

    // A fresh load of the Jobs page: until all 1,000 are counted and the first rows drawn.
    const t0 = Date.now();
    await page.goto(monitor(manager, `/jobs`));
    await waitText(page.getByTestId('job-count'), /^1000 of 1000 jobs$/, 30_000);
    await page.locator('.tr').first().waitFor();
    const loadMs = Date.now() - t0;
    const domRows = await page.locator('.tr').count();
    expect(domRows).toBeLessThan(100); // virtualized: a screenful, not 1,000 rows

    // Scroll from top to bottom in 60 animation frames, timing each frame.
    const scroll = await page.evaluate(async () => {
      const w = globalThis as unknown as InPage;
      const el = w.document.querySelector('.table.fill')!;
      const frames: number[] = [];
      const steps = 60;
      const max = el.scrollHeight - el.clientHeight;
      let last = performance.now();
      const begin = last;
      for (let i = 1; i <= steps; i++) {
        el.scrollTop = (max * i) / steps;
        await new Promise((r) => w.requestAnimationFrame(() => r(null)));
        const now = performance.now();
        frames.push(now - last);
        last = now;
      }
      frames.sort((a, b) => a - b);
      return {
        totalMs: performance.now() - begin,
        medianFrameMs: frames[Math.floor(frames.length / 2)]!,
        maxFrameMs: frames[frames.length - 1]!,
      };
    });
    await page.getByRole('link', { name: 'bulk 0000' }).waitFor();
    // The same 60 frames with nothing to do: this browser's own frame time, for scale.
    const idleFrameMs = await page.evaluate(async () => {
      const w = globalThis as unknown as InPage;
      const frames: number[] = [];
      let last = performance.now();
      for (let i = 0; i < 60; i++) {
        await new Promise((r) => w.requestAnimationFrame(() => r(null)));
        const now = performance.now();
        frames.push(now - last);
        last = now;
      }
      return frames.sort((a, b) => a - b)[30]!;
    });

    // Sorting 1,000 rows by name (a click on the header) until the first row changes.
    const t1 = Date.now();
    await page.locator('.th', { hasText: 'Name' }).click();
    await page
      .locator('.table.fill')
      .evaluate((el) => ((el as unknown as ScrollBox).scrollTop = 0));
    await waitText(page.locator('.tr').first(), /after restart|before restart|bulk 0000/);
    const sortMs = Date.now() - t1;
    await shot(page, 'jobs-1000');

    // One job of 10,000 tasks: its page and task grid.
    const big = await client.submitJob({
      name: 'ten thousand',
      plugin: 'builtin-render',
      frames: '1-10000',
      pool: 'nobody',
    });
    const t2 = Date.now();
    await page.goto(monitor(manager, `/jobs/${big.id}`));
    await waitText(page.getByTestId('task-summary'), /^0\/10000 done/);
    await page.locator('.task-cell').first().waitFor();
    const bigMs = Date.now() - t2;
    const cells = await page.locator('.task-cell').count();
    expect(cells).toBeLessThan(1000);
    await page.locator('.task-grid').evaluate((el) => {
      const box = el as unknown as ScrollBox;
      box.scrollTop = box.scrollHeight;
    });
    await page.locator('.task-cell', { hasText: /^10000$/ }).waitFor();
    await shot(page, 'job-10000-tasks');

    const figures = {
      submit998JobsMs: submitMs,
      jobsPageLoadMs: loadMs,
      jobsDomRows: domRows,
      scrollTopToBottom60FramesMs: Math.round(scroll.totalMs),
      scrollMedianFrameMs: Math.round(scroll.medianFrameMs * 10) / 10,
      scrollMaxFrameMs: Math.round(scroll.maxFrameMs * 10) / 10,
      idleMedianFrameMs: Math.round(idleFrameMs * 10) / 10,
      sortByNameMs: sortMs,
      job10000TasksPageMs: bigMs,
      taskGridDomCells: cells,
    };
    console.log('monitor at 1,000 jobs / 10,000 tasks:', JSON.stringify(figures));
    writeFileSync(
      join(ROOT, 'test-artifacts', 'monitor-perf.json'),
      JSON.stringify(figures, null, 2) + '\n',
    );
    expect(names).toHaveLength(998);
    expect(errors).toEqual([]);
  }, 90_000);
});
