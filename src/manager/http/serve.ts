import { isIP } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { fullPath, rolesFor, type RouteDef } from '../../api/contract.js';
import { routes, type Routes } from '../../api/routes.js';
import { workerMatches, type Principal } from '../../core/auth.js';
import { DroverError, invalid, notFound } from '../../core/errors.js';
import { parseInput } from '../../core/validate.js';

/**
 * Serves the route contract: registers every declared route on Fastify with its validation,
 * and decides access from the route the request *matched* — never from URL text. A route
 * that is not declared in the contract cannot be registered (the manager does not start),
 * and every declared route must have a handler (a type error otherwise).
 */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The contract declaration of the matched route. */
    route?: RouteDef;
  }
  interface FastifyRequest {
    /** Who the request acts as (set once access has been checked). */
    principal?: Principal;
  }
}

/** A declared input's validated value (the schema is optional in `RouteDef`). */
type Input<S> = [Exclude<S, undefined>] extends [z.ZodType]
  ? z.output<Exclude<S, undefined>>
  : undefined;

/** What a handler gets: validated inputs, the principal, and the raw request and reply. */
export interface RouteContext<D extends RouteDef> {
  params: Input<D['params']>;
  query: Input<D['query']>;
  body: Input<D['body']>;
  headers: Input<D['headers']>;
  /** Undefined only on public routes. */
  principal: Principal | undefined;
  request: FastifyRequest;
  reply: FastifyReply;
}

type MaybePromise<T> = T | Promise<T>;

/** A handler answers the route's reply, or `undefined` once it sent or hijacked the reply. */
export type Handler<D extends RouteDef> = (
  ctx: RouteContext<D>,
) => MaybePromise<z.input<D['reply']> | FastifyReply | undefined>;

/** A handler for every route of a route table. */
export type HandlersOf<T extends Record<string, RouteDef>> = { [K in keyof T]: Handler<T[K]> };
/** The handlers of the manager's own API. */
export type Handlers = HandlersOf<Routes>;

/** How the manager tells who a request acts as. */
export interface AccessControl {
  /**
   * The principal for a token secret, or undefined when the token is unknown or revoked.
   * (A manager started with `--no-auth` has no access control: `ServeOptions.access` is
   * `'none'` and every request acts as admin.)
   */
  principal(secret: string): Promise<Principal | undefined>;
  /** The owner (`user`) of a job, for routes with the `job` ownership rule. */
  jobOwner(id: string): Promise<string | undefined>;
}

export interface ServeOptions {
  /** `'none'`: the manager was started with `--no-auth` (every request acts as admin). */
  access: AccessControl | 'none';
  /**
   * Host names the manager answers to (DNS rebinding: a page on another site that resolves
   * its name to this manager sends that name as `Host`). IP literals always pass: a rebinding
   * attack needs a name. `localhost` is always allowed.
   */
  allowedHosts: readonly string[];
  /**
   * Also take the token as HTTP Basic's password (`Authorization: Basic base64(name:token)`),
   * as Deadline's Web Service clients send it. The user name is not checked: the token says
   * who the request acts as. Off for the native API.
   */
  basicAuth?: boolean;
  /**
   * Who a request without credentials acts as (Deadline's `--deadline-anonymous-user`, for
   * legacy clients on a trusted network); its role is checked like a token's. Undefined: such
   * a request is refused.
   */
  anonymous?: Principal;
}

const served_ = new WeakMap<FastifyInstance, string[]>();

/** The routes `app` serves (`METHOD /path`), as registered: the contract test compares them. */
export function servedRoutes(app: FastifyInstance): string[] {
  return [...(served_.get(app) ?? [])];
}

/** The principal of a manager started with `--no-auth`. */
const NO_AUTH: Principal = { tokenId: '', name: 'anonymous', role: 'admin', workers: '*' };

/**
 * Serves a route table (the manager's own API by default; a compatibility surface such as
 * Deadline's Web Service passes its own table, served on its own Fastify instance).
 */
export function serveRoutes<T extends Record<string, RouteDef> = Routes>(
  app: FastifyInstance,
  handlers: HandlersOf<T>,
  options: ServeOptions,
  table: T = routes as unknown as T,
): void {
  const allowed = new Set(['localhost', ...options.allowedHosts.map((h) => h.toLowerCase())]);

  // No route without a declaration: Fastify calls this for every route added from now on.
  const served: string[] = [];
  served_.set(app, served);
  app.addHook('onRoute', (opts) => {
    if (!opts.config?.route) {
      throw new Error(
        `${String(opts.method)} ${opts.url} is not declared in the route contract (src/api/routes.ts)`,
      );
    }
    for (const method of [opts.method].flat()) served.push(`${method} ${opts.url}`);
  });

  app.addHook('onRequest', async (request) => {
    checkTarget(request.raw.url ?? '');
    checkHost(request.headers.host, allowed);
    const def = request.routeOptions.config.route;
    // Unmatched: the not-found handler answers 404 and nothing runs.
    if (!def) return;
    if (def.access === 'public') return;
    if (options.access === 'none') {
      request.principal = NO_AUTH;
      return;
    }
    const secret = tokenOf(request, def, options.basicAuth === true);
    if (!secret && !options.anonymous) {
      throw new DroverError(
        'unauthorized',
        'this manager needs a token: pass --token or set DROVER_TOKEN (Authorization: Bearer …)',
      );
    }
    const principal = secret ? await options.access.principal(secret) : options.anonymous;
    if (!principal)
      throw new DroverError('unauthorized', 'the token is not valid (unknown or revoked)');
    if (!(rolesFor[def.access] as readonly string[]).includes(principal.role)) {
      throw new DroverError(
        'forbidden',
        `a ${principal.role} token may not call ${def.name} (${def.method} ${fullPath(def)}; needs ${def.access})`,
      );
    }
    request.principal = principal;
  });

  for (const def of Object.values<RouteDef>(table)) {
    const handler = handlers[def.name as keyof T] as Handler<RouteDef> | undefined;
    if (!handler) throw new Error(`route ${def.name} has no handler`);
    app.route({
      method: def.method,
      url: fullPath(def),
      config: { route: def },
      handler: async (request, reply) => {
        const ctx: RouteContext<RouteDef> = {
          params: def.params ? parseInput(def.params, request.params, 'params') : undefined,
          query: def.query ? parseInput(def.query, request.query, 'query') : undefined,
          body: def.body ? parseInput(def.body, request.body) : undefined,
          headers: def.headers
            ? parseInput(def.headers, request.headers, 'headers')
            : (undefined as never),
          principal: request.principal,
          request,
          reply,
        };
        if (def.owner === 'job') await checkJobOwner(options.access, ctx);
        if (def.owner === 'worker') checkWorker(ctx);
        const result = await handler(ctx);
        if (reply.sent || result === reply || result === undefined) return reply;
        reply.status(def.status ?? 200);
        return result;
      },
    });
  }
}

/**
 * Only origin-form targets in their one spelling: an absolute-form target
 * (`http://x/api/v1/…`), empty segments (`//`) and dot segments (also percent-encoded) are
 * refused, so what the router matched is what the declaration says.
 */
function checkTarget(url: string): void {
  const path = url.split('?')[0] ?? '';
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw invalid('url', 'bad percent-encoding in the request path');
  }
  const bad =
    !path.startsWith('/') ||
    path.includes('//') ||
    /(^|\/)\.{1,2}(\/|$)/.test(decoded) ||
    decoded.includes('\\');
  if (bad) {
    throw invalid(
      'url',
      'the request path must be a plain absolute path (no //, . or .. segments)',
    );
  }
}

function checkHost(host: string | undefined, allowed: ReadonlySet<string>): void {
  if (host === undefined) return;
  const name = hostName(host);
  if (name !== undefined && (isIP(name) !== 0 || allowed.has(name))) return;
  throw new DroverError(
    'forbidden',
    `this manager does not answer to the host name "${host.slice(0, 100)}"; start it with --allow-host NAME to allow it`,
  );
}

/** The host name of a Host header (`name:port`, `[v6]:port`), lower-cased; undefined if malformed. */
function hostName(host: string): string | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/.exec(host.trim());
  if (!m) return undefined;
  return (m[1] ?? m[2] ?? '').toLowerCase().replace(/\.$/, '');
}

/**
 * The bearer token; on the routes a browser calls without headers (the live stream, images)
 * also the `token` query parameter — and only there.
 */
function tokenOf(request: FastifyRequest, def: RouteDef, basic: boolean): string | undefined {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice(7).trim() || undefined;
  if (basic && header?.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return (colon < 0 ? '' : decoded.slice(colon + 1)) || undefined;
  }
  if (def.tokenInQuery) {
    const q = (request.query as Record<string, unknown> | undefined)?.token;
    if (typeof q === 'string' && q.length > 0 && q.length <= 200) return q;
  }
  return undefined;
}

async function checkJobOwner(
  access: AccessControl | 'none',
  ctx: RouteContext<RouteDef>,
): Promise<void> {
  const principal = ctx.principal;
  if (access === 'none' || !principal || principal.role === 'admin') return;
  const id = (ctx.params as { id: string }).id;
  const owner = await access.jobOwner(id);
  if (owner === undefined) throw notFound(`job ${id}`);
  if (principal.role === 'user' && owner === principal.name) return;
  throw new DroverError(
    'forbidden',
    `job ${id} belongs to ${owner || 'nobody'}; ${principal.name} may change only its own jobs`,
  );
}

function checkWorker(ctx: RouteContext<RouteDef>): void {
  const principal = ctx.principal;
  if (principal?.role !== 'worker' || principal.workers === '*') return;
  const fromParams = (ctx.params as { name?: string } | undefined)?.name;
  const fromBody = (ctx.body as { name?: string } | undefined)?.name;
  const name = fromParams ?? fromBody;
  if (name !== undefined && workerMatches(principal.workers, name)) return;
  throw new DroverError(
    'forbidden',
    `token ${principal.name} acts only as workers matching "${principal.workers}"` +
      (name === undefined ? '' : `, not as ${name}`),
  );
}
