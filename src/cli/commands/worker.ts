import { hostname } from 'node:os';
import pino from 'pino';
import { VERSION } from '../../manager/version.js';
import { DroverError } from '../../core/errors.js';
import { runWorker } from '../../worker/agent.js';
import { appRegistry } from '../../worker/apps/index.js';
import { loadExternalApps } from '../../worker/apps/external/index.js';
import type { IsolationMode } from '../../worker/isolation/index.js';
import { readTokenFile } from '../../worker/token-file.js';
import { DEFAULT_URL } from '../connection.js';

export interface WorkerCommandOptions {
  manager?: string;
  token?: string;
  tokenFile?: string;
  name?: string;
  region: string;
  pools?: string;
  groups?: string;
  slots: number;
  drainTimeout?: number;
  spoolDir?: string;
  spoolMaxMb?: number;
  logLevel?: string;
  isolation?: IsolationMode;
  /** A folder of `<Name>.json` application plugins to offer besides the built-in ones. */
  appsDir?: string;
}

const list = (s: string | undefined) =>
  (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/**
 * The worker's token: `--token`, `--token-file`, `DROVER_TOKEN`, `DROVER_TOKEN_FILE`, the
 * first that is set (a flag beats the environment). A token file must be private to the
 * worker's user (`readTokenFile`).
 */
export function workerToken(
  o: Pick<WorkerCommandOptions, 'token' | 'tokenFile'>,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (o.token !== undefined && o.tokenFile !== undefined) {
    throw new DroverError('invalid_input', 'give --token or --token-file, not both', 'token');
  }
  if (o.token) return o.token;
  if (o.tokenFile) return readTokenFile(o.tokenFile);
  if (env.DROVER_TOKEN) return env.DROVER_TOKEN;
  if (env.DROVER_TOKEN_FILE) return readTokenFile(env.DROVER_TOKEN_FILE);
  return undefined;
}

/**
 * `drover worker`: the render-node agent. The first SIGINT/SIGTERM stops claiming and lets
 * running tasks finish (up to --drain-timeout); a second one kills them and hands them back.
 * SIGUSR2 says the machine is going away: its tasks are handed back as interrupted.
 */
export async function worker(o: WorkerCommandOptions): Promise<void> {
  const token = workerToken(o);
  // Loaded before anything starts: a bad plugin file stops the worker with its name.
  const appsDir = o.appsDir ?? (process.env.DROVER_APPS_DIR || undefined);
  const apps = appRegistry(appsDir !== undefined ? await loadExternalApps(appsDir) : []);
  const graceful = new AbortController();
  const now = new AbortController();
  const onSignal = () => (graceful.signal.aborted ? now.abort() : graceful.abort());
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // SIGUSR2: the machine is going away (how a local fleet tells its worker of a spot
  // interruption): running tasks are handed back as interrupted, with no error counted.
  const interrupted = new AbortController();
  const onInterrupt = () => interrupted.abort();
  process.on('SIGUSR2', onInterrupt);
  try {
    await runWorker({
      manager: list(o.manager ?? process.env.DROVER_URL ?? DEFAULT_URL),
      ...(token ? { token } : {}),
      name: o.name ?? hostname(),
      region: o.region,
      pools: list(o.pools),
      groups: list(o.groups),
      slots: o.slots,
      apps,
      version: VERSION,
      signal: graceful.signal,
      stopNowSignal: now.signal,
      interruptSignal: interrupted.signal,
      ...(o.drainTimeout !== undefined ? { drainTimeoutMs: o.drainTimeout * 1000 } : {}),
      ...(o.spoolDir !== undefined ? { spoolDir: o.spoolDir } : {}),
      ...(o.isolation !== undefined ? { isolation: o.isolation } : {}),
      ...(o.spoolMaxMb !== undefined ? { spoolMaxBytes: o.spoolMaxMb * 1024 * 1024 } : {}),
      logger: pino({ name: 'drover-worker', level: o.logLevel ?? 'info' }),
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGUSR2', onInterrupt);
  }
}
