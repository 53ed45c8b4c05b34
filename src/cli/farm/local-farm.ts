import type { ChildProcess } from 'node:child_process';
import {
  chmodSync,
  createWriteStream,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  Replicator,
  createSimulatedGfsLayout,
  siteRoot,
  type SimulatedGfsLayout,
} from '../../gfs/simulated/index.js';
import { DroverError } from '../../core/errors.js';
import type { PluginState } from '../../core/plugin-config.js';
import type { ManagerSettings } from '../../manager/config.js';
import { startManager, type RunningManager } from '../../manager/server.js';
import {
  spawnWorkerProcess,
  stopChild,
  workerTokenPath,
} from '../../fleet/providers/worker-process.js';

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
  /**
   * The gfs-sync plugin's state. Default: `global` on a farm folder whose store has no state
   * saved for it yet (a newcomer's first multi-region render is protected from the
   * output-folder race); a state saved since (`drover plugin state gfs-sync …`) is kept.
   */
  gfsSync?: PluginState;
  /** Also serve Deadline's Web Service API on this port. */
  deadlinePort?: number;
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
 * `/gfs/` to each region's site, the gfs-sync plugin pointed at the simulated GFS (and on,
 * unless told otherwise or turned off before), and worker processes in every region. Used by
 * `drover dev` and `drover demo race`.
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
    ...(o.deadlinePort !== undefined ? { deadlinePort: o.deadlinePort } : {}),
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
  // Before any worker starts, so no job of this farm is ever handed out unprotected.
  const saved = (await store.listPluginSettings()).some((s) => s.name === 'gfs-sync');
  const gfsSync = o.gfsSync ?? (saved ? undefined : 'global');
  await manager.farm.plugins?.configure('gfs-sync', {
    ...(gfsSync ? { state: gfsSync } : {}),
    config: { gfs: 'simulated', gfsRoot },
  });

  // Each worker gets its own token, which acts only as that worker (a task that read it
  // could not register a fake worker or report on another worker's tasks), in a file only
  // this user may read, passed by name with --token-file: never in the environment, which
  // every task process inherits a copy of.
  await retireSharedWorkerToken(manager, o.data);
  const workers = new Map<string, ChildProcess>();
  for (const region of o.regions) {
    for (let i = 1; i <= o.workersPerRegion; i++) {
      const name = `${region}-${i}`;
      const tokenFile = await workerTokenFile(manager, o.data, name);
      const out = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
      const child = spawnWorkerProcess({
        managerUrls: [manager.url],
        name,
        region,
        slots: o.slots,
        drainTimeoutS: 5,
        logLevel: o.workerLogLevel ?? 'info',
        ...(tokenFile ? { tokenFile } : {}),
        output: { pipe: true },
      });
      child.stdout?.pipe(out);
      child.stderr?.pipe(out);
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

/** Where `drover dev` keeps each local worker's token (mode 0600, in a 0700 folder). */
export { workerTokenPath };

/**
 * Worker `name`'s token file: reused while the token in it is valid and acts as exactly this
 * worker; otherwise the old tokens of this worker (`worker-<name>`, scoped to the name) are
 * revoked and a new one is written. Undefined without authentication.
 */
async function workerTokenFile(
  manager: RunningManager,
  data: string,
  name: string,
): Promise<string | undefined> {
  const auth = manager.auth;
  if (!auth) return undefined;
  const file = workerTokenPath(data, name);
  mkdirSync(join(data, 'worker-tokens'), { recursive: true, mode: 0o700 });
  chmodSync(join(data, 'worker-tokens'), 0o700);
  try {
    const secret = readFileSync(file, 'utf8').trim();
    const principal = await auth.principal(secret);
    if (principal?.role === 'worker' && principal.workers === name) {
      chmodSync(file, 0o600);
      return file;
    }
  } catch {
    // none yet
  }
  const live = (await auth.list()).filter(
    (t) => t.revokedAt === null && t.role === 'worker' && t.workers === name,
  );
  for (const t of live) await auth.revoke(t.id);
  const tokenName = `worker-${name}`;
  let created;
  try {
    created = await auth.createToken(tokenName, 'worker', name);
  } catch (error) {
    // Names are unique; a revoked token of the same name may still hold it.
    if (!(error instanceof DroverError && error.code === 'conflict')) throw error;
    created = await auth.createToken(`${tokenName}-${Date.now().toString(36)}`, 'worker', name);
  }
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${created.secret}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return file;
}

/**
 * Earlier versions gave every local worker one token (`local-workers`, any worker, in
 * `<data>/worker-token`): revoked and removed, as a token nothing uses any more.
 */
async function retireSharedWorkerToken(manager: RunningManager, data: string): Promise<void> {
  const file = join(data, 'worker-token');
  rmSync(file, { force: true });
  if (!manager.auth) return;
  for (const t of await manager.auth.list()) {
    if (t.name === 'local-workers' && t.role === 'worker' && t.revokedAt === null) {
      await manager.auth.revoke(t.id);
    }
  }
}
