import Fastify, { LogController, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { openApiDocument } from '../api/openapi.js';
import { MAX_LOG_CHUNK_BYTES, MAX_LOG_CHUNKS_PER_REQUEST } from '../core/worker-protocol.js';
import type { Authenticator } from './auth.js';
import type { Farm } from './farm.js';
import { installErrorHandler } from './http/errors.js';
import { serveRoutes, type Handlers } from './http/serve.js';
import { farmHandlers } from './routes/farm.js';
import { fleetHandlers } from './routes/fleets.js';
import { jobHandlers } from './routes/jobs.js';
import { outputHandlers } from './routes/outputs.js';
import { pluginHandlers } from './routes/plugins.js';
import { streamHandlers } from './routes/stream.js';
import { tokenHandlers } from './routes/tokens.js';
import { versionHandlers } from './routes/versions.js';
import { webHandlers } from './routes/web.js';
import { workerHandlers } from './routes/workers.js';
import { VERSION } from './version.js';

/** The largest request body: a full log request with room for JSON escaping. */
export const BODY_LIMIT = MAX_LOG_CHUNK_BYTES * MAX_LOG_CHUNKS_PER_REQUEST * 2;

/**
 * The HTTP API as a Fastify instance, not yet listening: tests call `app.inject()` on it in
 * process; `startManager` listens.
 */
export interface AppOptions {
  /**
   * Checks tokens and roles on every request that is not public. `'none'` is `--no-auth`:
   * every request acts as admin — never the default, and the manager logs it loudly.
   */
  auth: Authenticator | 'none';
  /** Serve HTTPS with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Folders the monitor's thumbnails may be read from (see `routes/outputs.ts`). */
  outputRoots?: readonly string[];
  /** Host names the manager answers to besides IP literals and `localhost` (DNS rebinding). */
  allowedHosts?: readonly string[];
}

/**
 * The Fastify options every HTTP surface of the manager shares: the native API and Deadline's
 * Web Service (`src/compat/deadline/server.ts`).
 */
export function serverOptions(logger: Logger, tls?: AppOptions['tls']) {
  return {
    ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
    loggerInstance: logger,
    bodyLimit: BODY_LIMIT,
    // Workers make thousands of requests a second: no per-request log lines.
    logController: new LogController({ disableRequestLogging: true }),
    // Query strings and JSON stay plain data: no prototype keys from a client.
    onProtoPoisoning: 'error' as const,
    onConstructorPoisoning: 'error' as const,
    // Closing ends keep-alive connections too, instead of waiting out their timeout.
    forceCloseConnections: true,
    // Timeouts, explicit (these are Fastify's defaults), and why none of them cuts a
    // long-poll short: a claim waits at most 30 s (MAX_CLAIM_WAIT_MS) for work, and
    // - keepAliveTimeout closes a connection idle *between* requests: 72 s, longer than any
    //   gap a worker leaves (heartbeats every 5 s; undici's own idle close is 4 s), so the
    //   client, not the server, closes idle sockets and never reuses one the server is
    //   closing (that race is a reset);
    // - requestTimeout bounds receiving a request, headers and body, not answering it: 0
    //   (none), as a log upload of BODY_LIMIT on a slow link may take minutes;
    // - Node's headersTimeout (60 s) bounds the headers alone.
    // The resets the benchmark's 1,000 workers saw came from the listen backlog (server.ts).
    keepAliveTimeout: 72_000,
    requestTimeout: 0,
    // Long path parameters reach the route, whose schema answers 400 naming the parameter
    // (the router's own limit of 100 answered 404 "no route").
    routerOptions: { maxParamLength: 16_384 },
    // Only declared routes: no HEAD twins the contract does not know.
    exposeHeadRoutes: false,
  };
}

export function buildApp(farm: Farm, logger: Logger, options: AppOptions): FastifyInstance {
  // Typed as the plain instance: routes do not depend on pino's logger type.
  const app = Fastify({
    ...serverOptions(logger, options.tls),
    // The router's own refusals (bad URL encoding) in the same error shape as everything else.
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

  const auth = options.auth === 'none' ? undefined : options.auth;
  const document = openApiDocument(VERSION);
  const handlers: Handlers = {
    ...jobHandlers(farm),
    ...workerHandlers(farm),
    ...farmHandlers(farm),
    ...pluginHandlers(farm),
    ...outputHandlers(farm, options.outputRoots ?? []),
    ...tokenHandlers(auth),
    ...streamHandlers(app, farm, {
      ...(auth
        ? { tokenValid: async (secret) => (await auth.principal(secret)) !== undefined }
        : {}),
    }),
    ...webHandlers(),
    ...fleetHandlers(farm),
    ...versionHandlers(farm),
    openapi: () => document,
    metrics: async ({ reply }) => {
      const body = await farm.metrics.scrape();
      return reply.type(farm.metrics.registry.contentType).send(body);
    },
  };
  serveRoutes(app, handlers, {
    access: options.auth,
    allowedHosts: options.allowedHosts ?? [],
  });
  return app;
}
