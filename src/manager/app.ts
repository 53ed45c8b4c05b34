import Fastify, { LogController, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { API } from '../core/api.js';
import { MAX_LOG_CHUNK_BYTES, MAX_LOG_CHUNKS_PER_REQUEST } from '../core/worker-protocol.js';
import type { Authenticator } from './auth.js';
import type { Farm } from './farm.js';
import { tokenRoutes } from './routes/tokens.js';
import { installErrorHandler } from './http/errors.js';
import { farmRoutes } from './routes/farm.js';
import { jobRoutes } from './routes/jobs.js';
import { outputRoutes } from './routes/outputs.js';
import { pluginRoutes } from './routes/plugins.js';
import { streamRoutes } from './routes/stream.js';
import { webRoutes } from './routes/web.js';
import { workerRoutes } from './routes/workers.js';

/** The largest request body: a full log request with room for JSON escaping. */
export const BODY_LIMIT = MAX_LOG_CHUNK_BYTES * MAX_LOG_CHUNKS_PER_REQUEST * 2;

/**
 * The HTTP API as a Fastify instance, not yet listening: tests call `app.inject()` on it in
 * process; `startManager` listens.
 */
export interface AppOptions {
  /** Checks tokens and roles on every request; without it every request acts as admin. */
  auth?: Authenticator;
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Folders the monitor's thumbnails may be read from (see `routes/outputs.ts`). */
  outputRoots?: readonly string[];
}

export function buildApp(farm: Farm, logger: Logger, options: AppOptions = {}): FastifyInstance {
  // Typed as the plain instance: routes do not depend on pino's logger type.
  const app = Fastify({
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
    loggerInstance: logger,
    bodyLimit: BODY_LIMIT,
    // Workers make thousands of requests a second: no per-request log lines.
    logController: new LogController({ disableRequestLogging: true }),
    // Query strings and JSON stay plain data: no prototype keys from a client.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Closing ends keep-alive connections too, instead of waiting out their timeout.
    forceCloseConnections: true,
    // The router's own refusals (a path parameter over 100 characters, bad URL encoding) in
    // the same error shape as everything else.
    frameworkErrors: (err, _request, reply) => {
      const status = err.statusCode ?? 400;
      void (reply as unknown as FastifyReply).code(status).send({
        error: {
          code: status === 414 ? 'too_large' : 'invalid_input',
          message: err.message.slice(0, 200),
          field: 'url',
        },
      });
    },
  }) as unknown as FastifyInstance;
  installErrorHandler(app);
  options.auth?.install(app);
  void app.register(
    (api, _opts, done) => {
      jobRoutes(api, farm);
      workerRoutes(api, farm);
      farmRoutes(api, farm);
      pluginRoutes(api, farm);
      streamRoutes(api, farm);
      outputRoutes(api, farm, options.outputRoots ?? []);
      tokenRoutes(api, options.auth);
      done();
    },
    { prefix: API },
  );
  webRoutes(app);
  return app;
}
