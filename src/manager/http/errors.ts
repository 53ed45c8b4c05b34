import type { FastifyError, FastifyInstance } from 'fastify';
import type { ErrorReply } from '../../core/api.js';
import { DroverError, insufficientStorage, type ErrorCode } from '../../core/errors.js';
import { isDiskFull } from '../../store/sql/disk-full.js';
import { isConnectionError } from '../../store/sql/transient.js';

/** The one place typed errors become HTTP status codes. */
export const statusOf: Record<ErrorCode, number> = {
  invalid_input: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  lease_lost: 409,
  too_large: 413,
  unavailable: 503,
  // WebDAV's "Insufficient Storage": the request was fine, the server cannot store it now.
  insufficient_storage: 507,
};

export function errorBody(err: DroverError): ErrorReply {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(err.field !== undefined ? { field: err.field } : {}),
    },
  };
}

/** At most one "disk full" line in the manager log per this long (every request fails). */
export const DISK_FULL_LOG_INTERVAL_MS = 60_000;

export function installErrorHandler(app: FastifyInstance): void {
  // A full disk fails every write — heartbeats included, several a second — so it is logged
  // once, then once a minute with how many requests were refused meanwhile.
  let diskFullLoggedAt = -Infinity;
  let refusedSinceLine = 0;
  const noteDiskFull = (err: Error) => {
    refusedSinceLine++;
    const now = Date.now();
    if (now - diskFullLoggedAt < DISK_FULL_LOG_INTERVAL_MS) return;
    diskFullLoggedAt = now;
    app.log.error(
      {
        refused: refusedSinceLine,
        cause: err.cause instanceof Error ? err.cause.message : err.message,
      },
      "the store's disk is full: writes are refused (507) and health reports degraded until space is freed",
    );
    refusedSinceLine = 0;
  };
  app.setErrorHandler((err: FastifyError | DroverError | Error, request, reply) => {
    // A store error that escaped the store's own mapping is told apart the same way.
    if (!(err instanceof DroverError) && isDiskFull(err)) {
      const mapped = insufficientStorage();
      mapped.cause = err;
      err = mapped;
    }
    if (err instanceof DroverError) {
      if (err.code === 'insufficient_storage') noteDiskFull(err);
      return reply.status(statusOf[err.code]).send(errorBody(err));
    }
    const fe = err as FastifyError;
    // Fastify's own refusals: unparseable JSON, oversized bodies, wrong content type.
    if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) {
      const code: ErrorCode = fe.statusCode === 413 ? 'too_large' : 'invalid_input';
      return reply
        .status(fe.statusCode)
        .send({ error: { code, message: fe.message, field: 'body' } });
    }
    if (isConnectionError(err)) {
      // The store is unreachable (PostgreSQL restarting): nothing was changed; try again.
      request.log.warn({ err }, 'store unreachable');
      return reply.status(503).send({
        error: {
          code: 'unavailable',
          message: 'the store is unreachable; nothing was changed, try again',
        },
      });
    }
    request.log.error({ err }, 'request failed');
    return reply.status(500).send({
      error: { code: 'internal', message: 'internal error; the manager log has details' },
    });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({
      error: {
        code: 'not_found',
        message: `no route ${request.method} ${request.url.split('?')[0]}`,
      },
    }),
  );
}
