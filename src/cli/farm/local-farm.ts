import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import {
  Replicator,
  createSimulatedGfsLayout,
  siteRoot,
  type SimulatedGfsLayout,
} from '../../gfs/simulated/index.js';
import type { ManagerSettings } from '../../manager/config.js';
import { startManager, type RunningManager } from '../../manager/server.js';

/** The CLI's entry point, which worker processes are started with. */
const CLI_MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

/** The prefix jobs use for the global file system; each region maps it to its own site. */
export const GFS_PREFIX = '/gfs/';

export interface LocalFarmOptions {
  data: string;
  host: string;
  port: number;
  regions: string[];
  workersPerRegion: number;
  slots: number;
  /** How long the simulated GFS takes to sync a new folder or file to the other sites. */
  syncDelayMs: number;
  logger: Logger;
  settings?: Partial<ManagerSettings>;
  pluginsDir?: string;
  /** Worker log level (their logs go to `<data>/logs/<name>.log`). */
  workerLogLevel?: string;
  /** Folders besides the simulated GFS the monitor may show rendered images from. */
  outputRoots?: readonly string[];
}

export interface LocalFarm {
  manager: RunningManager;
  layout: SimulatedGfsLayout;
  gfsRoot: string;
  workers: Map<string, ChildProcess>;
  logDir: string;
  stop(): Promise<void>;
}

/**
 * A farm on this machine: a manager on an embedded SQLite file, a simulated multi-region
 * global file system (one site per region, with its replicator), path-mapping rules from
 * `/gfs/` to each region's site, the gfs-sync plugin pointed at the simulated GFS, and
 * worker processes in every region. Used by `drover dev` and `drover demo race`.
 */
export async function startLocalFarm(o: LocalFarmOptions): Promise<LocalFarm> {
  const logDir = join(o.data, 'logs');
  mkdirSync(logDir, { recursive: true });
  const gfsRoot = join(o.data, 'gfs');
  const layout = await createSimulatedGfsLayout({ root: gfsRoot, sites: o.regions });
  const replicator = await Replicator.open({
    root: gfsRoot,
    delayMs: o.syncDelayMs,
    log: (line) => o.logger.info({ part: 'gfs-sim' }, line),
  });
  replicator.start();

  const manager = await startManager({
    dataDir: o.data,
    host: o.host,
    port: o.port,
    logger: o.logger,
    ...(o.settings ? { settings: o.settings } : {}),
    ...(o.pluginsDir ? { pluginsDir: o.pluginsDir } : {}),
    outputRoots: [gfsRoot, ...(o.outputRoots ?? [])],
  });
  const store = manager.farm.store;
  const existing = await store.listPathMappings();
  for (const region of o.regions) {
    const replacement = `${siteRoot(gfsRoot, region)}/`;
    if (
      !existing.some(
        (r) => r.prefix === GFS_PREFIX && r.region === region && r.replacement === replacement,
      )
    ) {
      await store.addPathMapping({
        prefix: GFS_PREFIX,
        replacement,
        region,
        os: '',
        caseSensitive: true,
      });
    }
  }
  manager.farm.paths.invalidate();
  await manager.farm.plugins?.configure('gfs-sync', { config: { gfs: 'simulated', gfsRoot } });

  // The workers' own token (role worker), kept beside the admin token for the next start.
  const workerToken = await workerTokenFor(manager, o.data);
  const workers = new Map<string, ChildProcess>();
  for (const region of o.regions) {
    for (let i = 1; i <= o.workersPerRegion; i++) {
      const name = `${region}-${i}`;
      const out = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
      const child = spawn(
        process.execPath,
        [
          CLI_MAIN,
          'worker',
          '--manager',
          manager.url,
          '--name',
          name,
          '--region',
          region,
          '--slots',
          String(o.slots),
          '--drain-timeout',
          '5',
          '--log-level',
          o.workerLogLevel ?? 'info',
        ],
        // The token goes in the environment, not the command line other users can read.
        {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, ...(workerToken ? { DROVER_TOKEN: workerToken } : {}) },
        },
      );
      child.stdout.pipe(out);
      child.stderr.pipe(out);
      workers.set(name, child);
    }
  }

  return {
    manager,
    layout,
    gfsRoot,
    workers,
    logDir,
    async stop() {
      await Promise.all([...workers.values()].map((child) => stopChild(child)));
      await manager.close();
      await replicator.stop();
    },
  };
}

/** The local workers' token: reused from `<data>/worker-token` while valid, else made anew. */
async function workerTokenFor(manager: RunningManager, data: string): Promise<string | undefined> {
  if (!manager.auth) return undefined;
  const file = join(data, 'worker-token');
  try {
    const secret = readFileSync(file, 'utf8').trim();
    if ((await manager.auth.principal(secret))?.role === 'worker') return secret;
  } catch {
    // none yet
  }
  const { secret } = await manager.auth.createToken('local-workers', 'worker');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

/** SIGTERM (the worker hands back what it runs), SIGKILL if it has not exited in 15 s. */
function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(kill);
      done();
    });
    child.kill('SIGTERM');
  });
}
