import { join, resolve } from 'node:path';
import pino from 'pino';
import type { FarmEvent } from '../../core/types.js';
import { GFS_PREFIX, startLocalFarm } from '../farm/local-farm.js';
import type { RunningManager } from '../../manager/server.js';
import { ensureWritableDirectory } from '../../store/sqlite/writable.js';
import { loadExternalApps } from '../../worker/apps/external/index.js';
import { ensureDevFleets, stopAllMachines } from '../../fleet/dev-fleets.js';

export interface DevOptions {
  data: string;
  host: string;
  port: number;
  regions: string;
  workersPerRegion: number;
  slots: number;
  syncDelay: number;
  pluginsDir?: string;
  /** Local workers offer the application plugins defined in this folder. */
  appsDir?: string;
  outputRoot?: string[];
  headless?: boolean;
  /** Also serve Deadline's Web Service API on this port. */
  deadlinePort?: number;
  /** No workers: one local fleet per region brings them up when work arrives (issue 12). */
  autoscale?: boolean;
  /** With `autoscale`: seconds an idle worker stays. */
  idleShutdown?: number;
}

function describeEvent(e: FarmEvent): string | undefined {
  const d = e.data;
  switch (e.type) {
    case 'job.submitted':
      return `job ${e.jobId} submitted: "${String(d.name)}" (${String(d.tasks)} tasks, ${String(d.plugin)})`;
    case 'job.finished':
      return `job ${e.jobId} completed`;
    case 'job.failed':
      return `job ${e.jobId} failed: ${String(d.reason)}`;
    case 'job.error':
      return `job ${e.jobId} task ${e.taskIndex} error on ${e.worker}: ${String(d.message)}`;
    case 'worker.started':
      return `worker ${e.worker} started`;
    case 'worker.stalled':
      return `worker ${e.worker} stalled; its tasks were requeued`;
    case 'worker.stopped':
      return `worker ${e.worker} stopped`;
    case 'version.created':
    case 'version.ready':
    case 'version.incomplete':
    case 'version.failed':
    case 'version.approved':
    case 'version.rejected':
      return `version ${String(d.product)} ${String(d.version)}: ${String(d.status)}${typeof d.error === 'string' ? ` (${d.error})` : ''}`;
    case 'fleet.launched':
      return `fleet ${String(d.fleet)} launched ${(d.machines as unknown[]).length} worker(s): ${String(d.reason)}`;
    case 'fleet.draining':
      return `fleet ${String(d.fleet)} drains ${e.worker}: ${String(d.reason)}`;
    case 'fleet.terminated':
      return `fleet ${String(d.fleet)} stopped ${e.worker ?? (d.machines as unknown[]).join(', ')}: ${String(d.reason)}`;
    case 'fleet.error':
      return `fleet ${String(d.fleet)} provider error ${String(d.code)}: ${String(d.message)}`;
    case 'fleet.paused':
      return `fleet ${String(d.fleet)} paused: ${String(d.reason)}`;
    default:
      return undefined;
  }
}

/**
 * `drover dev`: the miniature render farm. One manager on an embedded SQLite file, a
 * simulated multi-region global file system, worker processes in each region; everything
 * stopped cleanly on Ctrl-C or SIGTERM.
 */
export async function dev(o: DevOptions): Promise<void> {
  const data = resolve(o.data);
  const regions = o.regions
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  // Logs, the store, tokens and the simulated GFS live there: one clear line if it fails.
  ensureWritableDirectory(data);
  if (o.appsDir !== undefined) {
    // Checked here so a bad plugin file stops `dev` with its name; the local workers (and
    // those a local fleet starts) inherit the environment and load it again.
    const appsDir = resolve(o.appsDir);
    await loadExternalApps(appsDir);
    process.env.DROVER_APPS_DIR = appsDir;
  }
  const logger = pino(
    { name: 'drover' },
    pino.destination({ dest: join(data, 'logs', 'manager.log'), mkdir: true, sync: false }),
  );
  const farm = await startLocalFarm({
    data,
    host: o.host,
    port: o.port,
    regions,
    workersPerRegion: o.autoscale ? 0 : o.workersPerRegion,
    slots: o.slots,
    syncDelayMs: o.syncDelay * 1000,
    logger,
    ...(o.pluginsDir ? { pluginsDir: resolve(o.pluginsDir) } : {}),
    outputRoots: (o.outputRoot ?? ['.']).map((r) => resolve(r)),
    ...(o.deadlinePort !== undefined ? { deadlinePort: o.deadlinePort } : {}),
  });
  const { manager } = farm;
  const fleets = o.autoscale
    ? await ensureDevFleets(manager.farm, regions, {
        max: 3,
        idleShutdownS: o.idleShutdown ?? 20,
        slots: o.slots,
      })
    : [];
  const gfsSync = manager.farm.plugins?.show('gfs-sync');
  const publish = await configureDevPublishing(manager.farm, regions, o.syncDelay);

  const say = (line: string) => process.stdout.write(`${line}\n`);
  say('Drover miniature render farm');
  say(`  manager  ${manager.url}  (store ${join(data, 'drover.db')})`);
  for (const region of o.autoscale ? [] : regions) {
    say(
      `  region   ${region}: ${[...farm.workers.keys()].filter((n) => n.startsWith(`${region}-`)).join(', ')}`,
    );
  }
  for (const [i, region] of (o.autoscale ? regions : []).entries()) {
    say(
      `  region   ${region}: no workers yet; fleet ${fleets[i]} (local, max 3) starts them when work arrives and stops them after ${o.idleShutdown ?? 20}s idle`,
    );
  }
  say(
    `  gfs      ${GFS_PREFIX} is a simulated global file system, one site per region, synced after ${o.syncDelay}s (${farm.gfsRoot})`,
  );
  // On by default: jobs with output folders on /gfs/ get their folders made and synced to
  // every region first, so a first multi-region render does not split across folders.
  say(
    gfsSync?.state === 'global'
      ? '  gfs-sync global: output folders are made and synced to every region before a job renders (turn it off: npx drover plugin state gfs-sync disabled)'
      : `  gfs-sync ${gfsSync?.state ?? 'not loaded'} (turn it on: npx drover plugin state gfs-sync global)`,
  );
  if (publish) {
    say(
      `  publish  versions go to ${publish} (on the GFS; try --publish demo/seq010/sh010/beauty, then npx drover versions --all)`,
    );
  }
  if (manager.deadlineUrl) say(`  deadline ${manager.deadlineUrl}  (Deadline Web Service API)`);
  say(`  logs     ${farm.logDir}`);
  if (manager.auth) {
    say(
      `  workers  each has its own token, acting only as itself (${join(data, 'worker-tokens')}/<name>, mode 600)`,
    );
  }
  if (manager.adminToken) {
    say(
      `  token    ${manager.adminToken}  (admin; in ${join(data, 'admin-token')}, which the CLI reads from this folder)`,
    );
  }
  if (!o.headless) {
    // The token in the address is taken once by the monitor and removed from the address bar.
    const query = manager.adminToken ? `/?token=${encodeURIComponent(manager.adminToken)}` : '/';
    say(`  monitor  ${manager.url}${query}`);
  }
  say('Try, in another terminal:');
  say(
    '  npx drover submit --plugin builtin-render --frames 1-24 --chunk-size 2 --output-dir ./renders --wait',
  );
  say('  npx drover jobs');
  say('Ctrl-C stops the farm.');

  // Tell the user what happens on the farm, from the event log.
  let after = await manager.farm.store.latestEventSeq();
  const follow = setInterval(() => {
    manager.farm.store
      .listEvents({ after, limit: 500 })
      .then((events) => {
        for (const e of events) {
          after = e.seq;
          const line = describeEvent(e);
          if (line) say(`[${new Date(e.at).toLocaleTimeString()}] ${line}`);
        }
      })
      .catch(() => undefined);
  }, 500);

  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      say('stopping the farm…');
      clearInterval(follow);
      void stopAllMachines(manager.farm)
        .catch(() => 0)
        .then(() => farm.stop())
        .then(done);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/**
 * Publishing on the miniature farm: versions go to `/gfs/publish` on the simulated GFS (so
 * gfs-sync makes each version folder in one region and syncs it before the job renders); the
 * manager reaches them through the first region's site (where gfs-sync's folder jobs then
 * run too), and the scan of a finished job waits for frames rendered elsewhere to sync there.
 * Settings saved before (`drover plugin set publish …`) are kept. Returns the first root.
 */
async function configureDevPublishing(
  farm: RunningManager['farm'],
  regions: readonly string[],
  syncDelayS: number,
): Promise<string | undefined> {
  const host = farm.plugins;
  if (!host || !host.list().some((p) => p.name === 'publish')) return undefined;
  const current = host.show('publish');
  if (String(current.config.roots ?? '')) return String(current.config.roots).split(',')[0];
  const root = `${GFS_PREFIX}publish`;
  // The manager makes a version folder itself when it snapshots a scene into it, at the first
  // region's site: the folder job must run there too, or another region would make the same
  // folder before the first one synced (the race gfs-sync exists for).
  if (regions[0] && host.list().some((p) => p.name === 'gfs-sync')) {
    if (!String(host.show('gfs-sync').config.region ?? '')) {
      await host.configure('gfs-sync', { config: { region: regions[0] } });
    }
  }
  await host.configure('publish', {
    config: {
      roots: root,
      managerRegion: regions[0] ?? '',
      syncWaitSeconds: Math.min(600, Math.ceil(syncDelayS * 3) + 10),
    },
  });
  return root;
}
