import { hostname } from 'node:os';
import pino from 'pino';
import { VERSION } from '../../manager/version.js';
import { runWorker } from '../../worker/agent.js';
import { DEFAULT_URL } from '../connection.js';

export interface WorkerCommandOptions {
  manager?: string;
  token?: string;
  name?: string;
  region: string;
  pools?: string;
  groups?: string;
  slots: number;
  drainTimeout?: number;
  spoolDir?: string;
  spoolMaxMb?: number;
  logLevel?: string;
}

const list = (s: string | undefined) =>
  (s ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/**
 * `drover worker`: the render-node agent. The first SIGINT/SIGTERM stops claiming and lets
 * running tasks finish (up to --drain-timeout); a second one kills them and hands them back.
 */
export async function worker(o: WorkerCommandOptions): Promise<void> {
  const graceful = new AbortController();
  const now = new AbortController();
  const onSignal = () => (graceful.signal.aborted ? now.abort() : graceful.abort());
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await runWorker({
      manager: list(o.manager ?? process.env.DROVER_URL ?? DEFAULT_URL),
      ...((o.token ?? process.env.DROVER_TOKEN)
        ? { token: o.token ?? process.env.DROVER_TOKEN }
        : {}),
      name: o.name ?? hostname(),
      region: o.region,
      pools: list(o.pools),
      groups: list(o.groups),
      slots: o.slots,
      version: VERSION,
      signal: graceful.signal,
      stopNowSignal: now.signal,
      ...(o.drainTimeout !== undefined ? { drainTimeoutMs: o.drainTimeout * 1000 } : {}),
      ...(o.spoolDir !== undefined ? { spoolDir: o.spoolDir } : {}),
      ...(o.spoolMaxMb !== undefined ? { spoolMaxBytes: o.spoolMaxMb * 1024 * 1024 } : {}),
      logger: pino({ name: 'drover-worker', level: o.logLevel ?? 'info' }),
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
