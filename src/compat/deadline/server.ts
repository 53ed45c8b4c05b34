import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Principal } from '../../core/auth.js';
import { DroverError } from '../../core/errors.js';
import { serverOptions } from '../../manager/app.js';
import type { Farm } from '../../manager/farm.js';
import { statusOf } from '../../manager/http/errors.js';
import { serveRoutes, type AccessControl } from '../../manager/http/serve.js';
import { isConnectionError } from '../../store/sql/transient.js';
import { jobHandlers } from './jobs.js';
import { lookupHandlers } from './lookups.js';
import { taskHandlers } from './tasks.js';
import { deadlineRoutes } from './routes.js';

/** Deadline's own default port for its Web Service. */
export const DEADLINE_DEFAULT_PORT = 8082;

/** Largest request body, as the native API's: a `{"Jobs": […]}` of many jobs fits. */
const BODY_LIMIT = 4 * 1024 * 1024;

export interface DeadlineServiceOptions {
  /** Tokens and roles, or `'none'` (`--no-auth`: every request acts as admin). */
  access: AccessControl | 'none';
  allowedHosts: readonly string[];
  /** `--deadline-anonymous-user NAME`: requests without credentials act as this user. */
  anonymousUser?: string;
  /** `--deadline-aux-root DIR`: folders a user token's `AuxFiles` paths may be read from. */
  auxRoots?: readonly string[];
  tls?: { cert: string | Buffer; key: string | Buffer };
}

/**
 * Deadline 10's Web Service on its own Fastify instance, over the same Farm and store as the
 * native API. Differences from the native API, each because Deadline's clients expect it:
 * errors are a status and a plain-text body; bodies are JSON whatever the Content-Type (some
 * clients send none); the token may come as HTTP Basic's password.
 */
export function buildDeadlineApp(
  farm: Farm,
  logger: Logger,
  options: DeadlineServiceOptions,
): FastifyInstance {
  const app = Fastify({
    ...serverOptions(logger, options.tls),
    bodyLimit: BODY_LIMIT,
    frameworkErrors: (err, _request, reply) => {
      void (reply as unknown as FastifyReply)
        .code(err.statusCode ?? 400)
        .type('text/plain; charset=utf-8')
        .send(err.message.slice(0, 200));
    },
  }) as unknown as FastifyInstance;

  // JSON whatever the Content-Type says (or without one); an empty body is no body.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, raw, done) => {
    const textBody = typeof raw === 'string' ? raw : raw.toString('utf8');
    if (textBody.trim() === '') {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(textBody, refusePrototypeKeys));
    } catch (err) {
      const e = new DroverError(
        'invalid_input',
        `body: not valid JSON (${(err as Error).message.slice(0, 120)})`,
        'body',
      );
      done(e, undefined);
    }
  });

  app.setErrorHandler((err: FastifyError | DroverError | Error, request, reply) => {
    void reply.type('text/plain; charset=utf-8');
    if (err instanceof DroverError) {
      if (err.code === 'unauthorized')
        void reply.header('www-authenticate', 'Basic realm="Drover"');
      return reply.status(statusOf[err.code]).send(err.message);
    }
    const fe = err as FastifyError;
    if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.status(fe.statusCode).send(`body: ${fe.message}`);
    }
    if (isConnectionError(err)) {
      request.log.warn({ err }, 'store unreachable');
      return reply.status(503).send('the store is unreachable; nothing was changed, try again');
    }
    request.log.error({ err }, 'Deadline Web Service request failed');
    return reply.status(500).send('internal error; the manager log has details');
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .status(404)
      .type('text/plain; charset=utf-8')
      .send(`no resource ${request.method} ${request.url.split('?')[0]}`),
  );

  const anonymous: Principal | undefined = options.anonymousUser
    ? { tokenId: '', name: options.anonymousUser, role: 'user', workers: '' }
    : undefined;
  serveRoutes(
    app,
    { ...jobHandlers(farm, options.auxRoots), ...taskHandlers(farm), ...lookupHandlers(farm) },
    {
      access: options.access,
      allowedHosts: options.allowedHosts,
      basicAuth: true,
      ...(anonymous ? { anonymous } : {}),
    },
    deadlineRoutes,
  );
  return app;
}

function refusePrototypeKeys(key: string, value: unknown): unknown {
  if (key === '__proto__' || key === 'constructor') {
    throw new Error(`the key "${key}" is not accepted`);
  }
  return value;
}

export interface RunningDeadlineService {
  url: string;
  close(): Promise<void>;
}

/** Starts the Web Service; the anonymous user, when set, is logged loudly. */
export async function startDeadlineService(
  farm: Farm,
  logger: Logger,
  options: DeadlineServiceOptions & { host: string; port: number },
): Promise<RunningDeadlineService> {
  const log = logger.child({ part: 'deadline-web-service' });
  const app = buildDeadlineApp(farm, log, options);
  await app.listen({ host: options.host, port: options.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : options.port;
  const url = `${options.tls ? 'https' : 'http'}://${options.host}:${port}`;
  log.info({ url }, 'Deadline Web Service listening');
  if (options.anonymousUser) {
    log.warn(
      { user: options.anonymousUser, url },
      `DEADLINE WEB SERVICE WITHOUT CREDENTIALS (--deadline-anonymous-user): anyone who can reach ${url} submits and acts on jobs as user "${options.anonymousUser}"`,
    );
  }
  return { url, close: () => app.close() };
}
