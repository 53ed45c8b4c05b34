import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { invalid } from '../../core/errors.js';
import pino from 'pino';
import { startManager } from '../../manager/server.js';

export interface ManagerCommandOptions {
  data: string;
  host: string;
  port: number;
  logLevel?: string;
  pluginsDir?: string;
  /** A SQLite file or a `postgres://` URL (env DROVER_DB); default `<data>/drover.db`. */
  db?: string;
  tlsCert?: string;
  tlsKey?: string;
  heartbeatMs?: number;
  leaseTtlMs?: number;
  stallAfterMs?: number;
  houseKeepingMs?: number;
  outputRoot?: string[];
  allowHost?: string[];
  /** commander's `--no-auth`: false when given. */
  auth?: boolean;
}

function readPem(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw invalid(flag, `cannot read ${file}: ${(err as Error).message}`);
  }
}

/** `drover manager`: the HTTP API, scheduler and house keeping, until SIGINT/SIGTERM. */
export async function manager(o: ManagerCommandOptions): Promise<void> {
  const logger = pino({ name: 'drover-manager', level: o.logLevel ?? 'info' });
  if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) {
    throw invalid('--tls-cert', 'give both --tls-cert and --tls-key (PEM files)');
  }
  const tls =
    o.tlsCert && o.tlsKey
      ? { cert: readPem(o.tlsCert, '--tls-cert'), key: readPem(o.tlsKey, '--tls-key') }
      : undefined;
  const running = await startManager({
    dataDir: resolve(o.data),
    ...((o.db ?? process.env.DROVER_DB) ? { db: o.db ?? process.env.DROVER_DB } : {}),
    host: o.host,
    port: o.port,
    logger,
    settings: {
      ...(o.heartbeatMs !== undefined ? { heartbeatIntervalMs: o.heartbeatMs } : {}),
      ...(o.leaseTtlMs !== undefined ? { leaseTtlMs: o.leaseTtlMs } : {}),
      ...(o.stallAfterMs !== undefined ? { stallAfterMs: o.stallAfterMs } : {}),
      ...(o.houseKeepingMs !== undefined ? { houseKeepingIntervalMs: o.houseKeepingMs } : {}),
    },
    ...(o.pluginsDir ? { pluginsDir: resolve(o.pluginsDir) } : {}),
    ...(tls ? { tls } : {}),
    outputRoots: (o.outputRoot ?? []).map((r) => resolve(r)),
    allowedHosts: o.allowHost ?? [],
    auth: o.auth !== false,
  });
  process.stderr.write(
    `drover manager listening on ${running.url} (store: ${running.farm.store.kind})\n`,
  );
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      logger.info('stopping');
      running.close().then(done, (err: unknown) => {
        logger.error({ err }, 'stop failed');
        done();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
