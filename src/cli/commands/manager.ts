import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { invalid } from '../../core/errors.js';
import pino from 'pino';
import { startManager } from '../../manager/server.js';
import { ensureWritableDirectory } from '../../store/sqlite/writable.js';

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
  /** The most frames one job of a user token may have (admins are exempt). */
  maxFramesUser?: number;
  /** How long after deletion a job's tasks and logs are purged: `7d`, `12h`, `30m`, `0s`. */
  purgeDeletedAfter?: string;
  /** Also serve Deadline's Web Service API on this port. */
  deadlinePort?: number;
  /** Deadline Web Service requests without credentials act as this user (trusted networks). */
  deadlineAnonymousUser?: string;
  /** Folders the Web Service may copy a user token's `AuxFiles` from. */
  deadlineAuxRoot?: string[];
}

const DURATION_UNITS_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A duration flag: a whole number and a unit (`7d`, `12h`, `30m`, `45s`), in milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(text.trim());
  if (!m) throw invalid(flag, `"${text}" is not a duration like 7d, 12h, 30m or 45s`);
  return Number(m[1]) * DURATION_UNITS_MS[m[2] as keyof typeof DURATION_UNITS_MS];
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
  // The admin token (and the SQLite store, without --db) live there: one clear line now.
  ensureWritableDirectory(resolve(o.data));
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
      ...(o.maxFramesUser !== undefined ? { maxFramesPerJob: { user: o.maxFramesUser } } : {}),
      ...(o.purgeDeletedAfter !== undefined
        ? { purgeDeletedAfterMs: parseDuration(o.purgeDeletedAfter, '--purge-deleted-after') }
        : {}),
    },
    ...(o.pluginsDir ? { pluginsDir: resolve(o.pluginsDir) } : {}),
    ...(tls ? { tls } : {}),
    outputRoots: (o.outputRoot ?? []).map((r) => resolve(r)),
    allowedHosts: o.allowHost ?? [],
    auth: o.auth !== false,
    ...(o.deadlinePort !== undefined ? { deadlinePort: o.deadlinePort } : {}),
    ...(o.deadlineAnonymousUser ? { deadlineAnonymousUser: o.deadlineAnonymousUser } : {}),
    ...(o.deadlineAuxRoot ? { deadlineAuxRoots: o.deadlineAuxRoot.map((r) => resolve(r)) } : {}),
  });
  process.stderr.write(
    `drover manager listening on ${running.url} (store: ${running.farm.store.kind})\n`,
  );
  if (running.deadlineUrl) {
    process.stderr.write(`Deadline Web Service listening on ${running.deadlineUrl}\n`);
  }
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
