/**
 * The Fleets page in a real headless Chromium against a real manager (in this process, on a
 * real SQLite file) whose scaler runs a `local` fleet: a submitted job makes real worker
 * processes appear, and the page shows the fleet's settings, its machines and a chart of
 * demand and capacity from the scaler's decisions. An admin changes the fleet's size from the
 * page; a read-only viewer sees no such control.
 *
 * Needs /usr/bin/chromium (see monitor.test.ts) and a built dist/ (the monitor bundle and the
 * CLI the fleet's workers run).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCALER_PLUGIN } from '../../src/events/plugins/scaler/index.js';
import { LocalProvider } from '../../src/fleet/providers/local.js';
import { startManager, type RunningManager } from '../../src/manager/server.js';
import { CLI, FAST, until, untilJobState } from '../farm.js';
import { DroverClient } from '../../src/client/index.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CHROMIUM = process.env.DROVER_CHROMIUM ?? '/usr/bin/chromium';
const BUILT = join(ROOT, 'dist', 'web', 'index.html');
const SHOTS = join(ROOT, 'test-artifacts', 'screenshots');

async function launch(): Promise<Browser> {
  for (const [path, what] of [
    [CHROMIUM, 'Chromium (apt-get install -y chromium)'],
    [BUILT, 'the built monitor (npm run build)'],
    [CLI, 'the built CLI (npm run build)'],
  ] as const) {
    if (!existsSync(path))
      throw new Error(`${path} is missing: the Fleets page test needs ${what}`);
  }
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

describe('the Fleets page in Chromium', () => {
  let dir: string;
  let manager: RunningManager;
  let client: DroverClient;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    browser = await launch();
    dir = mkdtempSync(join(tmpdir(), 'drover-fleets-page-'));
    manager = await startManager({
      dataDir: dir,
      port: 0,
      settings: FAST,
      logger: pino({ level: 'silent' }),
      providers: [new LocalProvider({ data: dir, cliMain: CLI, terminateOnClose: true })],
    });
    client = new DroverClient({ url: manager.url, token: manager.adminToken! });
    await manager.farm.fleets.create({
      name: 'loc',
      provider: 'local',
      region: 'studio',
      pools: ['comp'],
      max: 2,
      idleShutdownS: 600,
      scaleOutPerMinute: 60,
      capacity: 'on-demand',
      costPerHour: 0.5,
      settings: { drainTimeout: 1, logLevel: 'warn' },
    });
    await manager.farm.plugins?.configure(SCALER_PLUGIN, { state: 'global' });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await manager?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows the fleet, the workers work brought up and demand against capacity', async () => {
    await page.goto(`${manager.url}/fleets?token=${encodeURIComponent(manager.adminToken!)}`);
    const fleet = page.locator('[data-testid="fleet"]', { hasText: 'loc' });
    await fleet.waitFor({ timeout: 20_000 });
    await expect(fleet.textContent()).resolves.toMatch(/local · studio · on-demand/);
    await expect(page.locator('[data-testid="scaler-state"]').textContent()).resolves.toBe(
      'global',
    );
    // Settings as defined, provider settings included.
    const settings = page.getByRole('table', { name: 'Settings of loc' });
    await expect(settings.textContent()).resolves.toMatch(/min 0 · max 2 · standby 0/);
    await expect(settings.textContent()).resolves.toMatch(/local\.drainTimeout/);

    const job = await client.submitJob({
      name: 'needs a fleet',
      plugin: 'CommandLine',
      pluginInfo: { executable: process.execPath, arguments: ['-e', 'setTimeout(() => {}, 3000)'] },
      frames: '1-4',
      pool: 'comp',
    });
    // Real worker processes appear in the page as the fleet's machines, named after it.
    const machines = fleet.locator('[data-testid="fleet-machine"]');
    await until('two machines on the page', async () => (await machines.count()) === 2, 40_000);
    const workerNames = await machines.locator('td:first-child').allTextContents();
    for (const name of workerNames) expect(name).toMatch(/^loc-local-[0-9a-f]{8}$/);
    await until(
      'the workers to register',
      async () => {
        const now = (await client.listWorkers()).map((w) => w.name);
        return workerNames.every((n) => now.includes(n));
      },
      30_000,
    );

    // The chart draws the scaler's decisions: demand rose above zero.
    const chart = fleet.locator('[data-testid="fleet-chart"]');
    await until(
      'the chart to have decisions',
      async () => Number((await chart.getAttribute('data-points').catch(() => '0')) ?? 0) >= 2,
      30_000,
    );
    const demandLine = await chart.locator('[data-series="demand"]').getAttribute('points');
    const capacityLine = await chart.locator('[data-series="capacity"]').getAttribute('points');
    expect(demandLine?.split(' ').length).toBeGreaterThan(2);
    expect(capacityLine?.split(' ').length).toBeGreaterThan(2);
    await expect(fleet.locator('[data-testid="fleet-decision"]').textContent()).resolves.toMatch(
      /demand \d+, idle \d+, busy \d+, booting \d+, target \d+/,
    );
    await page.screenshot({ path: join(SHOTS, 'fleets.png'), fullPage: true });
    await untilJobState(client, job.id, ['completed']);
  });

  it('lets an admin change the size; a read-only viewer gets no controls', async () => {
    const form = page.getByRole('form', { name: 'Size of loc' });
    await form.getByLabel('max of loc').fill('1');
    await form.getByRole('button', { name: 'Save' }).click();
    await until(
      'the new max to be stored',
      async () =>
        (await manager.farm.fleets.list()).fleets.find((f) => f.name === 'loc')?.max === 1,
      10_000,
    );
    const settings = page.getByRole('table', { name: 'Settings of loc' });
    await until(
      'the page to show it',
      async () => /max 1/.test((await settings.textContent()) ?? ''),
      10_000,
    );

    const { secret } = await manager.auth!.createToken('viewer', 'read-only');
    const viewer = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    await viewer.goto(`${manager.url}/fleets?token=${encodeURIComponent(secret)}`);
    await viewer.locator('[data-testid="fleet"]').first().waitFor({ timeout: 20_000 });
    await expect(viewer.getByRole('table', { name: 'Settings of loc' }).count()).resolves.toBe(1);
    expect(await viewer.getByRole('form', { name: 'Size of loc' }).count()).toBe(0);
    expect(await viewer.getByRole('button', { name: 'Save' }).count()).toBe(0);
    await viewer.close();
    expect(errors).toEqual([]);
  });
});
