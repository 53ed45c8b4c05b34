import type { Dialect } from './dialect.js';

/**
 * Which failed transactions `SqlStore` runs again, and after how long. On PostgreSQL:
 * - a deadlock (40P01) or serialization failure (40001) rolled the whole transaction back,
 *   so running it again is always safe (up to `MAX_CONFLICT_RETRIES` times);
 * - a lost connection is retried once, and only when it failed before COMMIT was sent: a
 *   COMMIT whose answer was lost may have committed, and running it again could apply a
 *   change twice (a second job, a second completion), so that error goes to the caller.
 * SQLite runs one transaction at a time in process and has neither.
 */
export function retryDelayMs(
  err: unknown,
  dialect: Dialect,
  attempt: number,
  commitSent: boolean,
): number | undefined {
  if (dialect !== 'postgres') return undefined;
  const code = errorCode(err);
  if (code === '40P01' || code === '40001') {
    return attempt <= MAX_CONFLICT_RETRIES ? 2 + Math.random() * 20 * attempt : undefined;
  }
  if (attempt === 1 && !commitSent && isConnectionError(err)) return RECONNECT_DELAY_MS;
  return undefined;
}

const MAX_CONFLICT_RETRIES = 5;
/** Long enough for the pool to drop the dead connection and a restarting server to answer. */
const RECONNECT_DELAY_MS = 250;

/** SQLSTATE classes and socket errors that mean "the connection, not the statement". */
const CONNECTION_CODES = new Set([
  '57P01', // admin_shutdown: the server is stopping or the backend was terminated
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
]);

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'string' ? err.code : undefined;
}

export function isConnectionError(err: unknown): boolean {
  const code = errorCode(err);
  if (code !== undefined && (CONNECTION_CODES.has(code) || code.startsWith('08'))) return true;
  const message = err instanceof Error ? err.message : '';
  return /connection terminated|connection error|not queryable|terminating connection|timeout exceeded when trying to connect/i.test(
    message,
  );
}

/** A unique index refused the row (PostgreSQL 23505, SQLite SQLITE_CONSTRAINT_UNIQUE). */
export function isUniqueViolation(err: unknown): boolean {
  const code = errorCode(err);
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}
