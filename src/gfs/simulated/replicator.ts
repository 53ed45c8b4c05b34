/**
 * The simulated GFS's replicator: scans every site's tree, and copies what appeared at one
 * site to every other site once it has been there (unchanged) for `delayMs` — the window in
 * which two regions can each create "the same" output folder. Collisions are resolved the
 * Hammerspace way: both copies are kept, and the one that arrives from elsewhere is renamed
 * `NAME[#S=<origin site id>]` at the top-most colliding level; everything created below it
 * later follows it into the renamed folder, because entries are tracked by identity (origin
 * site + origin path → path at each site), not by name.
 *
 * Two files created independently under one name (both regions rendering frame 1 into a
 * synced folder) are kept the same way: `frame.0001.exr[#S=10]` beside `frame.0001.exr`.
 * Deleting and renaming are not replicated. The ledger (`<root>/.gfs-sim/ledger.json`) is
 * rewritten atomically after every tick that changed it, so other processes can read it.
 */
import type { Stats } from 'node:fs';
import { copyFile, lstat, mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { invalid } from '../../core/errors.js';
import {
  collisionName,
  isIgnoredName,
  readSimulatedGfsLayout,
  siteRoot,
  type SimulatedGfsLayout,
  type SimulatedSite,
} from './layout.js';
import {
  entryId,
  readLedger,
  writeLedger,
  type Ledger,
  type LedgerEntry,
  type Placement,
} from './ledger.js';

export interface ReplicatorOptions {
  /** Root of a simulated GFS made by `createSimulatedGfsLayout`. */
  root: string;
  /** How long an entry must exist (files: unchanged) at its site before it is copied. */
  delayMs: number;
  /** Time between scans when started; default 100 ms. */
  intervalMs?: number;
  /** Clock for tests; default `Date.now`. */
  now?: () => number;
  /** One line per replication, collision or error. */
  log?: (line: string) => void;
}

const DEFAULT_INTERVAL_MS = 100;

export class Replicator {
  readonly layout: SimulatedGfsLayout;
  private readonly delayMs: number;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private readonly entries = new Map<string, LedgerEntry>();
  /** site → path at that site → entry id. Never shrinks: deletions are not replicated. */
  private readonly index = new Map<string, Map<string, string>>();
  private dirty = false;
  /** Failures already logged, so one stuck entry does not log ten lines a second. */
  private readonly reported = new Set<string>();
  /** The tick in progress (or the last one), so ticks never overlap. */
  private current: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  private constructor(layout: SimulatedGfsLayout, options: ReplicatorOptions, ledger: Ledger) {
    this.layout = layout;
    this.delayMs = options.delayMs;
    this.intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.now = options.now ?? Date.now;
    this.log = options.log ?? (() => {});
    for (const site of layout.sites) this.index.set(site.name, new Map());
    // Restarting the replicator keeps identities: without them every copy it made earlier
    // would look like an independent creation and collide.
    for (const entry of ledger.entries) {
      this.entries.set(entry.id, entry);
      for (const [site, placement] of Object.entries(entry.at)) {
        this.index.get(site)?.set(placement.path, entry.id);
      }
    }
  }

  /** Opens the replicator of the simulated GFS at `options.root`, resuming its ledger. */
  static async open(options: ReplicatorOptions): Promise<Replicator> {
    if (!Number.isFinite(options.delayMs) || options.delayMs < 0) {
      throw invalid('delayMs', 'must be a number of milliseconds ≥ 0');
    }
    if (options.intervalMs !== undefined && !(options.intervalMs > 0)) {
      throw invalid('intervalMs', 'must be a number of milliseconds > 0');
    }
    const layout = await readSimulatedGfsLayout(options.root);
    const ledger = await readLedger(options.root);
    return new Replicator(layout, options, ledger);
  }

  /** Scans every site and replicates what is due, then writes the ledger if it changed. */
  tick(): Promise<void> {
    const run = this.current.then(() => this.runTick());
    this.current = run.catch(() => {});
    return run;
  }

  /** Ticks every `intervalMs` until `stop()`. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const schedule = (): void => {
      this.timer = setTimeout(() => {
        void this.tick()
          .catch((error: unknown) => this.log(`replicator tick failed: ${String(error)}`))
          .finally(() => {
            if (this.running) schedule();
          });
      }, this.intervalMs);
    };
    schedule();
  }

  /** Stops ticking and waits for a tick in progress to finish. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.current;
  }

  private async runTick(): Promise<void> {
    const now = this.now();
    for (const site of this.layout.sites) {
      await this.scan(site.name, '', null, now);
    }
    await this.replicate(now);
    if (this.dirty) {
      this.dirty = false;
      await writeLedger(this.layout.root, {
        format: 1,
        updatedAt: now,
        entries: [...this.entries.values()],
      });
    }
  }

  // ── scanning ────────────────────────────────────────────────────────────────────────────

  private async scan(site: string, dir: string, parent: string | null, now: number) {
    const base = siteRoot(this.layout.root, site);
    let children;
    try {
      children = await readdir(join(base, dir), { withFileTypes: true });
    } catch {
      return; // removed while we walked
    }
    for (const child of children) {
      if (isIgnoredName(child.name)) continue;
      const path = dir === '' ? child.name : `${dir}/${child.name}`;
      if (child.isDirectory()) {
        const id = this.observe(site, path, 'dir', parent, now, undefined);
        await this.scan(site, path, id, now);
      } else if (child.isFile()) {
        const stats = await stat(join(base, path)).catch(() => undefined);
        if (stats) this.observe(site, path, 'file', parent, now, stats);
      }
    }
  }

  /** Records an entry seen at a site: a new one, or a change to a known file. */
  private observe(
    site: string,
    path: string,
    kind: 'dir' | 'file',
    parent: string | null,
    now: number,
    stats: Stats | undefined,
  ): string {
    const knownId = this.index.get(site)?.get(path);
    const known = knownId === undefined ? undefined : this.entries.get(knownId);
    if (known) {
      const placement = known.at[site];
      if (known.kind === 'file' && stats && placement && changed(placement, stats)) {
        // Written at this site since we last looked: this site's content is now the newest.
        known.version += 1;
        known.source = site;
        known.changedAt = now;
        placement.version = known.version;
        placement.mtimeMs = stats.mtimeMs;
        placement.size = stats.size;
        this.dirty = true;
      }
      return known.id;
    }
    const id = entryId(site, path);
    this.entries.set(id, {
      id,
      kind,
      origin: site,
      originPath: path,
      parent,
      version: 1,
      source: site,
      changedAt: now,
      at: {
        [site]: {
          path,
          sendTime: null,
          version: 1,
          mtimeMs: stats?.mtimeMs ?? null,
          size: stats?.size ?? null,
        },
      },
    });
    this.index.get(site)?.set(path, id);
    this.dirty = true;
    return id;
  }

  // ── replication ─────────────────────────────────────────────────────────────────────────

  private async replicate(now: number): Promise<void> {
    const due = [...this.entries.values()]
      .filter((entry) => now - entry.changedAt >= this.delayMs)
      // Parents before children, so a folder and what it holds travel in one tick. Paths
      // have the same depth at every site: a collision renames one segment, never adds one.
      .sort((a, b) => depth(a.originPath) - depth(b.originPath));
    for (const entry of due) {
      for (const site of this.layout.sites) {
        if (site.name === entry.source) continue;
        const placement = entry.at[site.name];
        if (placement && placement.version >= entry.version) continue;
        try {
          if (placement) await this.update(entry, site, placement, now);
          else await this.place(entry, site, now);
        } catch (error) {
          const line = `cannot replicate ${entry.id} to ${site.name}: ${(error as Error).message}`;
          if (!this.reported.has(line)) this.log(line);
          this.reported.add(line);
        }
      }
    }
  }

  /** First copy of an entry to a site, renamed if that site has its own entry by that name. */
  private async place(entry: LedgerEntry, site: SimulatedSite, now: number): Promise<void> {
    let parentPath = '';
    if (entry.parent !== null) {
      const parentAtSite = this.entries.get(entry.parent)?.at[site.name];
      if (!parentAtSite) return; // the folder has not arrived there yet
      parentPath = parentAtSite.path;
    }
    const name = entry.originPath.slice(entry.originPath.lastIndexOf('/') + 1);
    const base = siteRoot(this.layout.root, site.name);
    const originId = this.siteId(entry.origin);
    const candidates = candidatePaths(parentPath, name, originId);

    let placed: { path: string; stats: Stats | undefined } | undefined;
    let collided = false;
    if (entry.kind === 'dir') {
      for (const path of candidates) {
        if (this.index.get(site.name)?.has(path)) {
          collided = true;
          continue;
        }
        try {
          await mkdir(join(base, path));
          placed = { path, stats: undefined };
          break;
        } catch (error) {
          // Created at that site since the scan: an independent twin, so a collision.
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
          collided = true;
        }
      }
    } else {
      const staged = await this.stage(entry, join(base, parentPath), name);
      if (!staged) return;
      for (const path of candidates) {
        if (this.index.get(site.name)?.has(path) || (await exists(join(base, path)))) {
          collided = true;
          continue;
        }
        await rename(staged.temp, join(base, path));
        placed = { path, stats: await stat(join(base, path)) };
        break;
      }
      if (!placed) await rm(staged.temp, { force: true });
    }
    if (!placed) {
      this.log(`cannot replicate ${entry.id} to ${site.name}: every collision name is taken`);
      return;
    }
    entry.at[site.name] = {
      path: placed.path,
      sendTime: now,
      version: entry.version,
      mtimeMs: placed.stats?.mtimeMs ?? null,
      size: placed.stats?.size ?? null,
    };
    this.index.get(site.name)?.set(placed.path, entry.id);
    this.dirty = true;
    const kind = entry.kind === 'dir' ? 'folder' : 'file';
    const origin = `${entry.source}:${entry.at[entry.source]?.path ?? entry.originPath}`;
    this.log(
      collided
        ? `collision: ${kind} ${origin} → ${site.name}:${placed.path}`
        : `replicated ${kind} ${origin} → ${site.name}:${placed.path}`,
    );
  }

  /** A newer version of a file that a site already holds: copied over it. */
  private async update(
    entry: LedgerEntry,
    site: SimulatedSite,
    placement: Placement,
    now: number,
  ): Promise<void> {
    if (entry.kind !== 'file') return;
    const base = siteRoot(this.layout.root, site.name);
    const target = join(base, placement.path);
    const slash = placement.path.lastIndexOf('/');
    const staged = await this.stage(
      entry,
      join(base, placement.path.slice(0, Math.max(slash, 0))),
      placement.path.slice(slash + 1),
    );
    if (!staged) return;
    await rename(staged.temp, target);
    const stats = await stat(target);
    placement.version = entry.version;
    placement.sendTime = now;
    placement.mtimeMs = stats.mtimeMs;
    placement.size = stats.size;
    this.dirty = true;
    this.log(`updated file ${entry.source}:${entry.at[entry.source]?.path} → ${site.name}`);
  }

  /**
   * Copies the newest version of a file into a hidden temp file in `dir` (renamed into place
   * by the caller, so readers never see half a file). Undefined when the source changed or
   * vanished since the scan: it is not stable, and the next scan will say so.
   */
  private async stage(
    entry: LedgerEntry,
    dir: string,
    name: string,
  ): Promise<{ temp: string } | undefined> {
    const sourcePlacement = entry.at[entry.source];
    if (!sourcePlacement) return undefined;
    const source = join(siteRoot(this.layout.root, entry.source), sourcePlacement.path);
    const before = await stat(source).catch(() => undefined);
    if (!before || changed(sourcePlacement, before)) return undefined;
    const temp = join(dir, `.${name}.${randomBytes(4).toString('hex')}.part`);
    await copyFile(source, temp);
    // Keep the modification time, as a GFS does: it is what sync checks compare against.
    await utimes(temp, before.atime, before.mtime);
    return { temp };
  }

  private siteId(name: string): number {
    return this.layout.sites.find((s) => s.name === name)?.id ?? 0;
  }
}

function changed(placement: Placement, stats: Stats): boolean {
  return placement.mtimeMs !== stats.mtimeMs || placement.size !== stats.size;
}

function depth(path: string): number {
  return path.split('/').length;
}

/** `Movie`, then `Movie[#S=10]`, then numbered fallbacks should even that be taken. */
function candidatePaths(parentPath: string, name: string, originId: number): string[] {
  const inParent = (n: string) => (parentPath === '' ? n : `${parentPath}/${n}`);
  const renamed = collisionName(name, originId);
  return [
    inParent(name),
    inParent(renamed),
    ...[2, 3, 4, 5].map((i) => inParent(`${renamed}~${i}`)),
  ];
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
