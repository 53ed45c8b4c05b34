import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gfsConformance } from '../conformance.js';
import { createGfs } from '../contract.js';
import { createSimulatedGfs } from './adapter.js';
import { describeSites } from './describe.js';
import { createSimulatedGfsLayout, readSimulatedGfsLayout, siteRoot } from './layout.js';
import { readLedger } from './ledger.js';
import { Replicator } from './replicator.js';
import { runGfsSim } from './run.js';
import { simulatedFixture, type SimulatedFixture } from './test-harness.js';

for (const sites of [
  ['us-west-2', 'eu-west-2'],
  ['us-west-2', 'eu-west-2', 'ap-south-1'],
]) {
  gfsConformance(`simulated (${sites.length} sites)`, async () => {
    const f = await simulatedFixture(sites);
    const outside = await mkdtemp(join(tmpdir(), 'drover-gfs-outside-'));
    return {
      gfs: createSimulatedGfs({ root: f.root }),
      sites,
      holdsSync: true,
      createDirectory: (site, relPath) => f.mkdir(site, relPath),
      createFile: (site, relPath, content) => f.write(site, relPath, content),
      async waitForSync() {
        await f.replicator.tick();
        f.clock.advance(f.delayMs);
        await f.replicator.tick();
      },
      outsideDirectory: outside,
      async close() {
        await f.close();
        await rm(outside, { recursive: true, force: true });
      },
    };
  });
}

describe('simulated GFS', () => {
  let f: SimulatedFixture;
  afterEach(async () => {
    await f.close();
  });

  describe('layout', () => {
    it('gives sites Hammerspace-like ids 0, 10, 20 by default, or the ones asked for', async () => {
      f = await simulatedFixture(['us-west-2', 'eu-west-2', 'ap-south-1']);
      expect(f.layout.sites).toEqual([
        { name: 'us-west-2', id: 0 },
        { name: 'eu-west-2', id: 10 },
        { name: 'ap-south-1', id: 20 },
      ]);
      const other = await mkdtemp(join(tmpdir(), 'drover-gfs-ids-'));
      const layout = await createSimulatedGfsLayout({
        root: other,
        sites: ['us-west-2=3', { name: 'eu-west-2', id: 7 }],
      });
      expect(layout.sites).toEqual([
        { name: 'us-west-2', id: 3 },
        { name: 'eu-west-2', id: 7 },
      ]);
      expect(siteRoot(other, 'eu-west-2')).toBe(join(other, 'sites', 'eu-west-2'));
      expect(await readSimulatedGfsLayout(other)).toEqual(layout);
      await rm(other, { recursive: true, force: true });
    });

    it('reopens with the same sites and refuses different ones', async () => {
      f = await simulatedFixture();
      await expect(
        createSimulatedGfsLayout({ root: f.root, sites: ['us-west-2', 'eu-west-2'] }),
      ).resolves.toMatchObject({ sites: f.layout.sites });
      await expect(
        createSimulatedGfsLayout({ root: f.root, sites: ['us-west-2'] }),
      ).rejects.toMatchObject({ code: 'invalid_input', field: 'sites' });
    });

    it('refuses bad site lists', async () => {
      f = await simulatedFixture();
      const root = join(f.root, 'other');
      for (const sites of [[], ['a', 'a'], ['a=1', 'b=1'], ['../x'], ['a=-1']]) {
        await expect(createSimulatedGfsLayout({ root, sites })).rejects.toMatchObject({
          code: 'invalid_input',
        });
      }
    });
  });

  describe('replication', () => {
    it('copies a folder to the other site after the delay and not before', async () => {
      f = await simulatedFixture();
      await f.mkdir('us-west-2', 'show/Movie');
      await f.replicator.tick();
      f.clock.advance(f.delayMs - 1);
      await f.replicator.tick();
      expect((await describeSites(f.root)).map((s) => s.folders)).toEqual([
        ['show', 'show/Movie'],
        [],
      ]);
      f.clock.advance(1);
      await f.replicator.tick();
      expect((await describeSites(f.root)).map((s) => s.folders)).toEqual([
        ['show', 'show/Movie'],
        ['show', 'show/Movie'],
      ]);
    });

    it('copies files once stable, with content and mtime, and re-copies them when they change', async () => {
      f = await simulatedFixture();
      await f.write('us-west-2', 'shot/frame.0001.exr', 'v1');
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      expect(await f.read('eu-west-2', 'shot/frame.0001.exr')).toBe('v1');

      // Changed at London this time: London's content wins, after the delay.
      await f.write('eu-west-2', 'shot/frame.0001.exr', 'version two');
      await f.replicator.tick();
      expect(await f.read('us-west-2', 'shot/frame.0001.exr')).toBe('v1');
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      expect(await f.read('us-west-2', 'shot/frame.0001.exr')).toBe('version two');
      // Our own copy is not mistaken for a new change: nothing more happens.
      const lines = f.log.length;
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      expect(f.log.length).toBe(lines);
    });

    it('waits for a file that keeps changing', async () => {
      f = await simulatedFixture();
      await f.write('us-west-2', 'frame.exr', 'a');
      await f.replicator.tick();
      f.clock.advance(f.delayMs - 10);
      await f.write('us-west-2', 'frame.exr', 'ab');
      await f.replicator.tick();
      f.clock.advance(20);
      await f.replicator.tick();
      expect((await describeSites(f.root))[1]!.files).toEqual([]);
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      expect(await f.read('eu-west-2', 'frame.exr')).toBe('ab');
    });

    it('skips dot-files, gateway files and partial files', async () => {
      f = await simulatedFixture();
      for (const name of ['.hidden', 'x.fs_command_gateway 1a2b', 'a.tmp', 'b.part', 'ok.exr']) {
        await f.write('us-west-2', name, 'x');
      }
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      expect((await describeSites(f.root))[1]!.files).toEqual(['ok.exr']);
    });

    it('records a send time per site in the ledger', async () => {
      f = await simulatedFixture(['us-west-2', 'eu-west-2', 'ap-south-1']);
      await f.mkdir('us-west-2', 'Movie');
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      const sent = f.clock.now();
      await f.replicator.tick();
      const ledger = await readLedger(f.root);
      const movie = ledger.entries.find((e) => e.id === 'us-west-2:Movie')!;
      expect(movie.at).toMatchObject({
        'us-west-2': { path: 'Movie', sendTime: null },
        'eu-west-2': { path: 'Movie', sendTime: sent },
        'ap-south-1': { path: 'Movie', sendTime: sent },
      });
    });

    it('resumes identities after a restart instead of colliding with its own copies', async () => {
      f = await simulatedFixture();
      await f.mkdir('us-west-2', 'Movie');
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      await f.replicator.stop();
      f.replicator = await Replicator.open({ root: f.root, delayMs: f.delayMs, now: f.clock.now });
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      expect((await describeSites(f.root)).map((s) => s.folders)).toEqual([['Movie'], ['Movie']]);
    });
  });

  describe('replication lag', () => {
    it('reports each site behind by the oldest change it has not received, then caught up', async () => {
      f = await simulatedFixture(['us-west-2', 'eu-west-2'], 5_000);
      const gfs = createSimulatedGfs({ root: f.root });
      expect(await gfs.replication!(f.clock.now())).toEqual([
        { site: 'us-west-2', pending: 0, lagMs: 0, lastDelayMs: null },
        { site: 'eu-west-2', pending: 0, lagMs: 0, lastDelayMs: null },
      ]);
      await f.mkdir('us-west-2', 'show/Movie');
      await f.replicator.tick();
      f.clock.advance(3_000);
      await f.write('eu-west-2', 'notes.txt', 'hello');
      await f.replicator.tick();
      f.clock.advance(1_000);
      // eu-west-2 lacks show and show/Movie (seen 4 s ago); us-west-2 lacks notes.txt (1 s).
      expect(await gfs.replication!(f.clock.now())).toEqual([
        { site: 'us-west-2', pending: 1, lagMs: 1_000, lastDelayMs: null },
        { site: 'eu-west-2', pending: 2, lagMs: 4_000, lastDelayMs: null },
      ]);
      f.clock.advance(1_000);
      await f.replicator.tick(); // the folders are 5 s old: sent
      const [west, eu] = await gfs.replication!(f.clock.now());
      expect(eu).toEqual({ site: 'eu-west-2', pending: 0, lagMs: 0, lastDelayMs: 5_000 });
      expect(west).toMatchObject({ site: 'us-west-2', pending: 1, lagMs: 2_000 });
    });
  });

  describe('collisions, the Hammerspace way', () => {
    it('keeps both folders and renames the arrival with its origin site id, at both sites', async () => {
      f = await simulatedFixture([
        { name: 'us-west-2', id: 0 },
        { name: 'eu-west-2', id: 10 },
      ]);
      await f.mkdir('us-west-2', 'Movie');
      await f.mkdir('eu-west-2', 'Movie');
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      const [oregon, london] = await describeSites(f.root);
      expect(oregon!.folders).toEqual(['Movie', 'Movie[#S=10]']);
      expect(london!.folders).toEqual(['Movie', 'Movie[#S=0]']);
      expect(oregon!.collisionFolders).toEqual(['Movie[#S=10]']);
      expect(london!.collisionFolders).toEqual(['Movie[#S=0]']);
      expect(f.log.filter((l) => l.startsWith('collision:'))).toHaveLength(2);
    });

    it('renames at the top-most colliding level only', async () => {
      f = await simulatedFixture();
      await f.mkdir('us-west-2', 'show/shot010/Movie');
      await f.mkdir('eu-west-2', 'show/shot010/Movie');
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      const [oregon, london] = await describeSites(f.root);
      expect(oregon!.folders).toEqual([
        'show',
        'show/shot010',
        'show/shot010/Movie',
        'show[#S=10]',
        'show[#S=10]/shot010',
        'show[#S=10]/shot010/Movie',
      ]);
      expect(london!.collisionFolders).toEqual(['show[#S=0]']);
    });

    it('sends later files below a collided folder into the renamed folder at the other site', async () => {
      f = await simulatedFixture();
      await f.mkdir('us-west-2', 'Movie');
      await f.mkdir('eu-west-2', 'Movie');
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      // The render goes on in both regions, each into "its" Movie folder.
      await f.write('us-west-2', 'Movie/frame.0001.exr', 'oregon');
      await f.write('eu-west-2', 'Movie/frame.0002.exr', 'london');
      await f.mkdir('eu-west-2', 'Movie/passes');
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      const [oregon, london] = await describeSites(f.root);
      expect(oregon!.files).toEqual(['Movie/frame.0001.exr', 'Movie[#S=10]/frame.0002.exr']);
      expect(oregon!.folders).toContain('Movie[#S=10]/passes');
      expect(london!.files).toEqual(['Movie/frame.0002.exr', 'Movie[#S=0]/frame.0001.exr']);
      expect(await f.read('us-west-2', 'Movie[#S=10]/frame.0002.exr')).toBe('london');
      // The frames of one sequence are split: only half are in the intended folder at each site.
      expect((await describeSites(f.root, 'Movie')).map((s) => s.files.length)).toEqual([1, 1]);
    });

    it('is no collision when the folder was synced before the other site made it', async () => {
      f = await simulatedFixture();
      await f.mkdir('us-west-2', 'Movie');
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      await f.mkdir('eu-west-2', 'Movie'); // mkdir -p: already there
      await f.write('eu-west-2', 'Movie/frame.0002.exr', 'london');
      await f.write('us-west-2', 'Movie/frame.0001.exr', 'oregon');
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      const listings = await describeSites(f.root);
      for (const site of listings) {
        expect(site.collisionFolders).toEqual([]);
        expect(site.files).toEqual(['Movie/frame.0001.exr', 'Movie/frame.0002.exr']);
      }
    });

    it('keeps both files of one name written at two sites', async () => {
      f = await simulatedFixture();
      await f.write('us-west-2', 'frame.0001.exr', 'oregon');
      await f.write('eu-west-2', 'frame.0001.exr', 'london');
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      expect(await f.read('us-west-2', 'frame.0001.exr')).toBe('oregon');
      expect(await f.read('us-west-2', 'frame.0001.exr[#S=10]')).toBe('london');
      expect(await f.read('eu-west-2', 'frame.0001.exr[#S=0]')).toBe('oregon');
    });

    it('names a third site’s collisions by each origin', async () => {
      f = await simulatedFixture(['us-west-2', 'eu-west-2', 'ap-south-1']);
      await f.mkdir('us-west-2', 'Movie');
      await f.mkdir('eu-west-2', 'Movie');
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      const [, , mumbai] = await describeSites(f.root);
      expect(mumbai!.folders).toEqual(['Movie', 'Movie[#S=10]']);
    });
  });

  describe('syncState', () => {
    it('is unsynced before replication and synced with the send time after', async () => {
      f = await simulatedFixture(['us-west-2', 'eu-west-2', 'ap-south-1']);
      const gfs = createGfs('simulated', { root: f.root });
      const dir = await f.mkdir('eu-west-2', 'show/Movie');
      expect(await gfs.syncState(dir)).toEqual({
        path: dir,
        onGfs: true,
        synced: false,
        sites: [
          { site: 'us-west-2', synced: false, sendTime: null },
          { site: 'ap-south-1', synced: false, sendTime: null },
        ],
      });
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      const sent = f.clock.now();
      await f.replicator.tick();
      expect(await gfs.syncState(dir)).toEqual({
        path: dir,
        onGfs: true,
        synced: true,
        sites: [
          { site: 'us-west-2', synced: true, sendTime: sent },
          { site: 'ap-south-1', synced: true, sendTime: sent },
        ],
      });
      // Seen from a site it was copied to, the origin counts as synced (it came from there).
      const copy = await gfs.syncState(f.path('us-west-2', 'show/Movie'));
      expect(copy.synced).toBe(true);
      expect(copy.sites).toContainEqual({ site: 'eu-west-2', synced: true, sendTime: null });
    });

    it('answers for the renamed copy of a collided folder, and the site root', async () => {
      f = await simulatedFixture();
      const gfs = createSimulatedGfs({ root: f.root });
      await f.mkdir('us-west-2', 'Movie');
      await f.mkdir('eu-west-2', 'Movie');
      await f.replicator.tick();
      f.clock.advance(f.delayMs);
      await f.replicator.tick();
      expect((await gfs.syncState(f.path('us-west-2', 'Movie[#S=10]'))).synced).toBe(true);
      expect((await gfs.syncState(f.path('us-west-2', 'Movie'))).synced).toBe(true);
      expect((await gfs.syncState(f.path('us-west-2', ''))).synced).toBe(true);
    });

    it('skips paths outside the sites folder, including the root itself', async () => {
      f = await simulatedFixture();
      const gfs = createSimulatedGfs({ root: f.root });
      expect((await gfs.syncState(f.root)).onGfs).toBe(false);
      expect((await gfs.syncState(join(f.root, '.gfs-sim'))).onGfs).toBe(false);
    });
  });
});

describe('runGfsSim', () => {
  it('replicates in the background until aborted', async () => {
    const root = await mkdtemp(join(tmpdir(), 'drover-gfs-run-'));
    const controller = new AbortController();
    const lines: string[] = [];
    const running = runGfsSim({
      root,
      sites: ['us-west-2', 'eu-west-2'],
      delayMs: 0,
      signal: controller.signal,
      log: (line) => lines.push(line),
    });
    const gfs = createSimulatedGfs({ root });
    await waitFor(async () => (await readSimulatedGfsLayout(root).catch(() => null)) !== null);
    const dir = join(siteRoot(root, 'us-west-2'), 'Movie');
    await mkdir(dir);
    await waitFor(async () => (await gfs.syncState(dir)).synced);
    controller.abort();
    await running;
    expect(lines[0]).toMatch(/us-west-2 \(#S=0\), eu-west-2 \(#S=10\)/);
    expect(lines).toContain('replicated folder us-west-2:Movie → eu-west-2:Movie');
    expect(lines.at(-1)).toBe('simulated GFS stopped');
    await rm(root, { recursive: true, force: true });
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
