import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { PluginState } from '../../core/plugin-config.js';
import type { Job } from '../../core/types.js';
import { describeSites, siteRoot } from '../../gfs/simulated/index.js';
import { GFS_PREFIX, startLocalFarm } from '../farm/local-farm.js';
import { until } from './until.js';

export interface RaceOptions {
  regions: string[];
  workersPerRegion: number;
  frames: number;
  syncDelayMs: number;
  /** Keep each scenario's farm folder here (default: a temporary folder, removed after). */
  data?: string;
  /** Keep the temporary farm folders (they hold the farms' tokens, logs and frames). */
  keep?: boolean;
  /** Stops the scenario (Ctrl-C): its farm is stopped and its temporary folder removed. */
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface SiteReport {
  site: string;
  /** Folders under the show folder at that site. */
  folders: string[];
  collisionFolders: string[];
  framesInIntendedFolder: number;
}

export interface RaceScenario {
  plugin: PluginState;
  jobState: string;
  /** Collision folders (`NAME[#S=id]`) summed over every site. */
  collisionFolders: number;
  framesExpected: number;
  /** Frames present in the one intended output folder at every site (the fewest of any site). */
  framesInIntendedFolder: number;
  seconds: number;
  sites: SiteReport[];
}

/** The job's output folder, on the global file system. The show folder exists and is synced. */
const SHOW = 'show';
const INTENDED = 'seq010/shot010/render/v001';
const FAST = {
  heartbeatIntervalMs: 500,
  leaseTtlMs: 5_000,
  stallAfterMs: 10_000,
  houseKeepingIntervalMs: 250,
};

async function countFrames(dir: string): Promise<number> {
  try {
    return (await readdir(dir)).filter((f) => /^frame_\d+\.png$/.test(f)).length;
  } catch {
    return 0;
  }
}

/**
 * One scenario of the race: a fresh miniature farm with the gfs-sync plugin in `plugin`
 * state renders one multi-region job; after the global file system has settled, each site
 * is inspected for collision folders and for the frames in the intended folder.
 */
export async function runRaceScenario(plugin: PluginState, o: RaceOptions): Promise<RaceScenario> {
  const temporary = !o.data;
  const data = o.data
    ? join(o.data, plugin)
    : await mkdtemp(join(tmpdir(), `drover-race-${plugin}-`));
  try {
    return await runIn(data, plugin, o);
  } finally {
    // The farm folder holds an admin token and worker tokens: a temporary one goes, whatever
    // happened (an error, Ctrl-C), unless asked to keep it.
    if (temporary && !o.keep) await rm(data, { recursive: true, force: true });
    else o.log?.(`  gfs-sync ${plugin}: the farm is kept in ${data}`);
  }
}

async function runIn(data: string, plugin: PluginState, o: RaceOptions): Promise<RaceScenario> {
  await mkdir(data, { recursive: true });
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  o.signal?.throwIfAborted();
  const farm = await startLocalFarm({
    data,
    host: '127.0.0.1',
    port: 0,
    regions: o.regions,
    workersPerRegion: o.workersPerRegion,
    slots: 1,
    syncDelayMs: o.syncDelayMs,
    logger: pino({ level: 'silent' }),
    settings: FAST,
    workerLogLevel: 'warn',
    // Explicitly: a local farm turns gfs-sync on by default, and the unprotected case is the
    // point of the first scenario.
    gfsSync: plugin,
  });
  try {
    const { farm: service } = farm.manager;
    const first = o.regions[0]!;
    // The show folder already exists everywhere, as it would in a studio.
    await mkdir(join(siteRoot(farm.gfsRoot, first), SHOW), { recursive: true });
    await until(
      'the show folder to reach every site',
      async () =>
        (await describeSites(farm.gfsRoot, SHOW)).every((s) => s.exists) ? true : undefined,
      o.syncDelayMs * 4 + 10_000,
      o.signal,
    );
    await service.plugins!.configure('gfs-sync', {
      state: plugin,
      config: {
        iterationDelay: 1,
        iterationCount: Math.max(30, Math.ceil((o.syncDelayMs * 4) / 1000)),
        region: first,
      },
    });
    await until(
      'every worker to register',
      async () =>
        (await service.store.listWorkers()).length === farm.workers.size ? true : undefined,
      30_000,
      o.signal,
    );
    log(`  gfs-sync ${plugin}: rendering ${o.frames} frames in ${o.regions.join(' and ')}…`);
    const job = await service.submitJob({
      name: `race (gfs-sync ${plugin})`,
      plugin: 'builtin-render',
      pluginInfo: { width: 64, height: 36, samples: 1, frameDelayMs: 200 },
      frames: `1-${o.frames}`,
      chunkSize: 1,
      regions: o.regions,
      outputDirectories: [`${GFS_PREFIX}${SHOW}/${INTENDED}`],
    });
    const done = await until<Job>(
      'the render job to finish',
      async () => {
        const j = await service.store.fetchJob(job.id);
        return j && ['completed', 'failed'].includes(j.state) ? j : undefined;
      },
      120_000 + o.syncDelayMs * 10,
      o.signal,
    );
    // Let the global file system settle: every file has reached every site (or its copy).
    let last = '';
    await until(
      'the global file system to settle',
      async () => {
        const now = JSON.stringify(await describeSites(farm.gfsRoot, SHOW));
        const stable = now === last;
        last = now;
        return stable ? true : undefined;
      },
      o.syncDelayMs * 10 + 30_000,
      o.signal,
    ).catch(() => undefined);
    await new Promise((r) => setTimeout(r, o.syncDelayMs + 500));
    o.signal?.throwIfAborted();

    const listings = await describeSites(farm.gfsRoot, SHOW);
    const sites: SiteReport[] = [];
    for (const s of listings) {
      sites.push({
        site: s.site,
        folders: s.folders,
        collisionFolders: s.collisionFolders,
        framesInIntendedFolder: await countFrames(
          join(siteRoot(farm.gfsRoot, s.site), SHOW, ...INTENDED.split('/')),
        ),
      });
    }
    return {
      plugin,
      jobState: done.state,
      collisionFolders: sites.reduce((n, s) => n + s.collisionFolders.length, 0),
      framesExpected: o.frames,
      framesInIntendedFolder: Math.min(...sites.map((s) => s.framesInIntendedFolder)),
      seconds: Math.round((Date.now() - started) / 100) / 10,
      sites,
    };
  } finally {
    await farm.stop();
  }
}
