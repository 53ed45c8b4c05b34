import type { FastifyError, FastifyInstance } from 'fastify';
import type { ErrorReply } from '../../core/api.js';
import { DroverError, type ErrorCode } from '../../core/errors.js';
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

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | DroverError | Error, request, reply) => {
    if (err instanceof DroverError) {
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
