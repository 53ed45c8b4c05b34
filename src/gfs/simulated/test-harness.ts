import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createSimulatedGfsLayout, siteRoot, type SimulatedGfsLayout } from './layout.js';
import { Replicator } from './replicator.js';

/** A controllable clock: time moves only when a test says so. */
export class TestClock {
  t = 1_800_000_000_000;
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A simulated GFS in a temp folder, with a replicator driven by a test clock. */
export interface SimulatedFixture {
  root: string;
  layout: SimulatedGfsLayout;
  clock: TestClock;
  replicator: Replicator;
  log: string[];
  delayMs: number;
  path(site: string, relPath: string): string;
  mkdir(site: string, relPath: string): Promise<string>;
  write(site: string, relPath: string, content: string): Promise<string>;
  read(site: string, relPath: string): Promise<string>;
  close(): Promise<void>;
}

export async function simulatedFixture(
  sites: Array<string | { name: string; id: number }> = ['us-west-2', 'eu-west-2'],
  delayMs = 1000,
): Promise<SimulatedFixture> {
  const root = await mkdtemp(join(tmpdir(), 'drover-gfs-sim-'));
  const layout = await createSimulatedGfsLayout({ root, sites });
  const clock = new TestClock();
  const log: string[] = [];
  const replicator = await Replicator.open({
    root,
    delayMs,
    now: clock.now,
    log: (line) => log.push(line),
  });
  const path = (site: string, relPath: string) =>
    join(siteRoot(root, site), ...relPath.split('/').filter(Boolean));
  return {
    root,
    layout,
    clock,
    replicator,
    log,
    delayMs,
    path,
    async mkdir(site, relPath) {
      await mkdir(path(site, relPath), { recursive: true });
      return path(site, relPath);
    },
    async write(site, relPath, content) {
      await mkdir(dirname(path(site, relPath)), { recursive: true });
      await writeFile(path(site, relPath), content);
      return path(site, relPath);
    },
    read: (site, relPath) => readFile(path(site, relPath), 'utf8'),
    async close() {
      await replicator.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}
