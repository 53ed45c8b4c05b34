/**
 * The GFS conformance suite: every adapter that can run here passes these (BullMQ-style: one
 * contract, one suite). Hammerspace cannot run here; its parts are tested on their own.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GlobalFileSystem } from './types.js';

export interface GfsHarness {
  gfs: GlobalFileSystem;
  /** The GFS's sites; one for a single-site GFS. */
  sites: string[];
  /** True when nothing syncs until `waitForSync` is called (controlled clock). */
  holdsSync: boolean;
  /** Creates a directory (relative `/`-path, parents included) at a site; its absolute path. */
  createDirectory(site: string, relPath: string): Promise<string>;
  /** Creates a file at a site; its absolute path. */
  createFile(site: string, relPath: string, content: string): Promise<string>;
  /** Drives the GFS until everything created so far has reached every site. */
  waitForSync(): Promise<void>;
  /** An existing directory the GFS does not manage, if the adapter has such a thing. */
  outsideDirectory?: string;
  close(): Promise<void>;
}

export function gfsConformance(name: string, open: () => Promise<GfsHarness>): void {
  describe(`gfs conformance: ${name}`, () => {
    let h: GfsHarness;
    beforeEach(async () => {
      h = await open();
    });
    afterEach(async () => {
      await h.close();
    });

    it('reports a directory as on the GFS with one entry per other site', async () => {
      const [here] = h.sites;
      const dir = await h.createDirectory(here!, 'show/shot010/Movie');
      const state = await h.gfs.syncState(dir);
      expect(state.path).toBe(dir);
      expect(state.onGfs).toBe(true);
      expect(state.sites.map((s) => s.site).sort()).toEqual(
        h.sites.filter((s) => s !== here).sort(),
      );
      expect(state.synced).toBe(state.sites.every((s) => s.synced));
    });

    it('reports a directory synced at every site once the GFS has synced', async () => {
      for (const site of h.sites) {
        const dir = await h.createDirectory(site, `from-${site}/render`);
        if (h.holdsSync && h.sites.length > 1) {
          expect((await h.gfs.syncState(dir)).synced).toBe(false);
        }
        await h.waitForSync();
        const state = await h.gfs.syncState(dir);
        expect(state.synced).toBe(true);
        for (const other of state.sites) {
          expect(other.synced).toBe(true);
          expect(other.sendTime).toEqual(expect.any(Number));
        }
      }
    });

    it('syncs a folder created inside a synced one, and its files alongside', async () => {
      const [here] = h.sites;
      await h.createDirectory(here!, 'show');
      await h.waitForSync();
      const dir = await h.createDirectory(here!, 'show/shot020');
      await h.createFile(here!, 'show/shot020/frame.0001.exr', 'pixels');
      await h.waitForSync();
      expect((await h.gfs.syncState(dir)).synced).toBe(true);
    });

    it('accepts a trailing separator', async () => {
      const [here] = h.sites;
      const dir = await h.createDirectory(here!, 'trailing');
      await h.waitForSync();
      const state = await h.gfs.syncState(`${dir}/`);
      expect(state.onGfs).toBe(true);
      expect(state.synced).toBe(true);
    });

    it('refuses a directory that does not exist', async () => {
      const [here] = h.sites;
      const dir = await h.createDirectory(here!, 'exists');
      await expect(h.gfs.syncState(`${dir}/missing`)).rejects.toMatchObject({
        code: 'not_found',
      });
    });

    it('refuses a path that is a file', async () => {
      const [here] = h.sites;
      const file = await h.createFile(here!, 'notes.txt', 'x');
      await expect(h.gfs.syncState(file)).rejects.toMatchObject({ code: 'invalid_input' });
    });

    it('skips a directory outside the GFS', async () => {
      if (h.outsideDirectory === undefined) return;
      const state = await h.gfs.syncState(h.outsideDirectory);
      expect(state).toEqual({ path: h.outsideDirectory, onGfs: false, sites: [], synced: false });
    });
  });
}
