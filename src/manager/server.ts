import { randomBytes } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import { SETTINGS_CHANNEL, WORK_CHANNEL, type Store } from '../store/contract.js';
import { openStore } from '../store/open.js';
import { buildApp } from './app.js';
import { Authenticator, ensureAdminToken } from './auth.js';
import { defaultManagerSettings, type ManagerSettings } from './config.js';
import { Farm } from './farm.js';
import { AuxFileStore } from './aux-files.js';
import { PluginHost } from '../events/host.js';
import { loadPlugins } from '../events/loader.js';
import type { EventPlugin } from '../events/plugin.js';
import { builtinPlugins } from '../events/plugins/index.js';
import { startDeadlineService } from '../compat/deadline/server.js';
import type { FleetProvider } from '../fleet/provider.js';
import { Ec2Provider } from '../fleet/providers/ec2.js';
import { LocalProvider } from '../fleet/providers/local.js';
import { Scaler } from '../fleet/scaler.js';
import { onScalerWake, SCALER_PLUGIN } from '../events/plugins/scaler/index.js';

/**
 * Connections the kernel may hold for the manager before it accepts them. Node's default,
 * 511, is too few for a farm: when 1,000 workers connect at once (a manager restart, the
 * benchmark's start) the accept queue overflows, and the kernel's answer to an overflowing
 * queue reached the workers as connection resets: 65–93 per run of BENCHMARKS.md's
 * 1,000-worker dispatch, with ≈4,500 `ListenOverflows` counted in /proc/net/netstat during
 * each run; none of either with this value. The kernel caps it at `net.core.somaxconn` (4096
 * by default since Linux 5.4; raise that for larger farms). The server's timeouts are not
 * involved: see `buildApp`.
 */
const LISTEN_BACKLOG = 65_535;

/** How long a manager keeps a role (a plugin's consumer) without renewing it. */
const LEAD_TTL_MS = 15_000;

export interface ManagerOptions {
  /** Folder of the embedded SQLite store (`<dataDir>/drover.db`) when `db` is not given. */
  dataDir: string;
  /** The store: a SQLite file path or a `postgres://` URL (several managers may share it). */
  db?: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  settings?: Partial<ManagerSettings>;
  logger?: Logger;
  /** Use this store instead of opening one (tests). */
  store?: Store;
  /** Event plugins to run (default: the built-in ones) … */
  plugins?: readonly EventPlugin[];
  /** … plus the third-party ones in this folder. */
  pluginsDir?: string;
  /**
   * Tokens and roles on every request (default true; the first start creates an admin
   * token). `false` is `--no-auth`: every request acts as admin, logged loudly at start.
   */
  auth?: boolean;
  /** Host names clients reach this manager by, besides IP literals and `localhost`. */
  allowedHosts?: readonly string[];
  /** Serve HTTPS: PEM certificate and key. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /**
   * Folders the monitor may show rendered images from (a job's output folder must be inside
   * one). None: the manager serves no images, whatever folders jobs name.
   */
  outputRoots?: readonly string[];
  /** Also serve Deadline's Web Service API on this port (`--deadline-port`; 0 picks one). */
  deadlinePort?: number;
  /** `--deadline-anonymous-user NAME`: Web Service requests without credentials act as NAME. */
  deadlineAnonymousUser?: string;
  /**
   * Fleet providers. Default: `local` (worker processes on this machine under `dataDir`) and
   * `ec2` (credentials from the AWS SDK's default chain; it calls AWS only for the regions of
   * the ec2 fleets defined, so a farm without one never reaches AWS).
   */
  providers?: readonly FleetProvider[];
  /** `--deadline-aux-root DIR`: folders a user token's `AuxFiles` paths may be copied from. */
  deadlineAuxRoots?: readonly string[];
}

export interface RunningManager {
  url: string;
  farm: Farm;
  /** This manager's name in leader leases (`host:pid:random`). */
  id: string;
  /** The admin token from `<dataDir>/admin-token`, when authentication is on and it is there. */
  adminToken: string | undefined;
  /** Tokens and roles, when authentication is on. */
  auth: Authenticator | undefined;
  /** The Deadline Web Service's address, when `deadlinePort` was given. */
  deadlineUrl?: string;
  close(): Promise<void>;
}

/** Opens the store, starts house keeping and listens. */
export async function startManager(options: ManagerOptions): Promise<RunningManager> {
  const logger = options.logger ?? pino({ name: 'drover-manager' });
  const settings = { ...defaultManagerSettings, ...options.settings };
  const store =
    options.store ??
    (await openStore(options.db ?? join(options.dataDir, 'drover.db'), {
      leaseTtlMs: settings.leaseTtlMs,
    }));
  const id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  const farm = new Farm(store, settings, logger);
  const plugins = [
    ...(options.plugins ?? builtinPlugins),
    ...(options.pluginsDir ? await loadPlugins(options.pluginsDir) : []),
  ];
  const host = new PluginHost({
    store,
    plugins,
    log: logger.child({ part: 'event-plugins' }),
    onWork: () => farm.signal.wake(),
    // With several managers on one database, each plugin consumes on one of them at a time.
    lead: (role) => store.tryLead(role, id, LEAD_TTL_MS),
  });
  const auth = options.auth === false ? undefined : new Authenticator(store);
  const unsubscribe = store.onNotify((channel) => {
    if (channel === WORK_CHANNEL) {
      // Another manager's commit may have made work: wake long-polling claims and plugins.
      farm.signal.wake();
      host.wake();
    } else if (channel === SETTINGS_CHANNEL) {
      // A plugin's settings, a path mapping, a limit or a token changed through some manager:
      // re-read or forget what this one keeps, so the change is in force here within a
      // second (each also re-reads every few seconds, in case a notification is lost).
      // Limits are read by each claim's own SQL: nothing of them is kept here.
      host
        .reloadSettings()
        .catch((err: unknown) =>
          logger.warn({ err }, 'could not re-read event plugin settings; trying again later'),
        );
      farm.paths.invalidate();
      auth?.forget();
    }
  });
  await host.start();
  farm.plugins = host;
  const providers = options.providers ?? [
    new LocalProvider({ data: options.dataDir }),
    new Ec2Provider({
      locations: async () =>
        (await store.fleets.listFleets())
          .filter((f) => f.provider === 'ec2')
          .map((f) => ({ region: f.region, settings: f.settings })),
    }),
  ];
  for (const p of providers) farm.fleets.addProvider(p);
  // Never read as a Web Service's AuxFiles path: the store, the admin token; the kernel's files.
  farm.auxFiles = new AuxFileStore(join(options.dataDir, 'aux-files'), [
    resolve(options.dataDir),
    '/proc',
    '/sys',
    '/dev',
  ]);
  const adminToken = auth ? await ensureAdminToken(store, auth, options.dataDir) : undefined;
  if (!auth) {
    logger.warn(
      'AUTHENTICATION IS OFF (--no-auth): anyone who can reach this manager acts as admin and can run commands on every worker',
    );
  }
  const listenHost = options.host ?? '127.0.0.1';
  const app = buildApp(farm, logger, {
    auth: auth ?? 'none',
    allowedHosts: [hostname(), listenHost, ...(options.allowedHosts ?? [])],
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.outputRoots ? { outputRoots: options.outputRoots } : {}),
  });

  let keeping: Promise<void> = Promise.resolve();
  let lastCleaning = Date.now();
  const startedAt = Date.now();
  const timer = setInterval(() => {
    keeping = (async () => {
      // Once per round across managers: the one holding the house-keeping lease does it.
      if (!(await store.tryLead('house-keeping', id, settings.houseKeepingIntervalMs * 5))) return;
      // A manager that was down longer than a lease would otherwise expire every lease at
      // once, before the workers' next heartbeats: give them one lease's time to come back.
      if (Date.now() - startedAt >= settings.leaseTtlMs) await farm.houseKeeping();
      // Deleted jobs' tasks, abandoned creations, expired idempotency keys: ≈10,000 rows at
      // most per round, in short transactions, so a backlog never stalls the manager.
      await farm.purge();
      if (Date.now() - lastCleaning >= settings.houseCleaningIntervalMs) {
        lastCleaning = Date.now();
        await host.houseCleaning();
        // Auxiliary files of jobs that can never run again, uploads no job named.
        await farm.auxFiles?.clean(async (job) => (await store.fetchJob(job))?.state);
      }
    })().catch((err: unknown) => logger.error({ err }, 'house keeping failed'));
  }, settings.houseKeepingIntervalMs);
  timer.unref();

  await app.listen({
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 8642,
    backlog: LISTEN_BACKLOG,
  });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (options.port ?? 8642);
  const url = `${options.tls ? 'https' : 'http'}://${options.host ?? '127.0.0.1'}:${port}`;
  logger.info({ url, store: store.kind }, 'manager listening');
  // The scaler (issue 12): acts while its plugin is Global, on one manager at a time.
  const scaler = new Scaler({
    store,
    fleets: farm.fleets,
    log: logger.child({ part: 'scaler' }),
    plugin: () => {
      const r = host.list().find((p) => p.name === SCALER_PLUGIN);
      return r ? { state: r.state, config: r.config } : undefined;
    },
    saveConfig: async (config) => {
      await host.configure(SCALER_PLUGIN, { config });
    },
    lead: () => store.tryLead('scaler', id, LEAD_TTL_MS),
    managerUrls: () => [url],
    createWorkerToken: async (name, pattern) =>
      auth ? (await auth.createToken(name, 'worker', pattern)).secret : '',
  });
  const stopWaking = onScalerWake(() => scaler.wake());
  scaler.start();
  const deadline =
    options.deadlinePort === undefined
      ? undefined
      : await startDeadlineService(farm, logger, {
          access: auth ?? 'none',
          allowedHosts: [hostname(), listenHost, ...(options.allowedHosts ?? [])],
          host: listenHost,
          port: options.deadlinePort,
          ...(options.deadlineAnonymousUser
            ? { anonymousUser: options.deadlineAnonymousUser }
            : {}),
          ...(options.deadlineAuxRoots
            ? { auxRoots: await Promise.all(options.deadlineAuxRoots.map((r) => realpath(r))) }
            : {}),
          ...(options.tls ? { tls: options.tls } : {}),
        });

  return {
    url,
    farm,
    id,
    adminToken,
    auth,
    ...(deadline ? { deadlineUrl: deadline.url } : {}),
    async close() {
      clearInterval(timer);
      unsubscribe();
      farm.signal.wake();
      stopWaking();
      await scaler.stop();
      await Promise.all(providers.map((p) => p.close()));
      await deadline?.close();
      await app.close();
      await host.stop();
      await keeping;
      await store.close();
    },
  };
}
