import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { API } from '../core/api.js';
import { workerMatches, type Principal, type Role, type TokenInfo } from '../core/auth.js';
import { DroverError } from '../core/errors.js';
import type { Store } from '../store/contract.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the request acts as; undefined when the manager runs without authentication. */
    principal?: Principal;
  }
}

/** What a route needs. `public` routes need no token at all. */
export type Access = 'public' | 'read' | 'user' | 'worker' | 'admin';

const allowed: Record<Exclude<Access, 'public'>, readonly Role[]> = {
  read: ['admin', 'user', 'read-only'],
  user: ['admin', 'user'],
  worker: ['admin', 'worker'],
  admin: ['admin'],
};

const WORKER_ROUTE = /^\/workers\/(register|[^/]+\/(heartbeat|work|logs|report|stopped))$/;
const USER_ROUTE = /^\/jobs(\/[^/]+(\/actions|\/tasks\/requeue)?)?$/;

/**
 * The access rules, in one place: the health check and the monitor's files are public;
 * worker tokens reach only the worker protocol; reading needs any other token; submitting
 * and acting on jobs needs a user token (ownership is checked by the job routes); the rest
 * (plugins, paths, limits, workers, tokens) needs an admin token.
 */
export function requiredAccess(method: string, url: string): Access {
  const path = url.split('?')[0]!;
  if (!path.startsWith(`${API}/`)) return 'public';
  const route = path.slice(API.length);
  if (route === '/health') return 'public';
  if (WORKER_ROUTE.test(route) && method === 'POST') return 'worker';
  if (method === 'GET' || method === 'HEAD') return 'read';
  if (route === '/paths/map') return 'read';
  if (USER_ROUTE.test(route) && (method === 'POST' || method === 'PATCH')) return 'user';
  return 'admin';
}

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Cached lookups: a revoked token stops working within this long on every manager. */
const CACHE_MS = 5_000;
const MAX_CACHE = 10_000;

export class Authenticator {
  private cache = new Map<string, { principal: Principal | undefined; at: number }>();

  constructor(private readonly store: Store) {}

  /** Creates a token; its secret is returned once and never stored. */
  async createToken(
    name: string,
    role: Role,
    workers?: string,
  ): Promise<{ secret: string; info: TokenInfo }> {
    const secret = `drv_${randomBytes(24).toString('base64url')}`;
    const info = await this.store.createToken({ name, role, hash: hashToken(secret), workers });
    return { secret, info };
  }

  list(): Promise<TokenInfo[]> {
    return this.store.listTokens();
  }

  async revoke(id: string): Promise<TokenInfo> {
    const info = await this.store.revokeToken(id);
    this.cache.clear();
    return info;
  }

  async principal(secret: string): Promise<Principal | undefined> {
    const hash = hashToken(secret);
    const hit = this.cache.get(hash);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.principal;
    const token = await this.store.findToken(hash);
    const principal = token
      ? { tokenId: token.id, name: token.name, role: token.role, workers: token.workers }
      : undefined;
    if (this.cache.size >= MAX_CACHE) this.cache.clear();
    this.cache.set(hash, { principal, at: Date.now() });
    return principal;
  }

  /** Checks every request against `requiredAccess`. */
  install(app: FastifyInstance): void {
    app.decorateRequest('principal', undefined);
    app.addHook('onRequest', async (request: FastifyRequest) => {
      const access = requiredAccess(request.method, request.url);
      if (access === 'public') return;
      const secret = tokenOf(request);
      if (!secret) {
        throw new DroverError(
          'unauthorized',
          'this manager needs a token: pass --token or set DROVER_TOKEN (Authorization: Bearer …)',
        );
      }
      const principal = await this.principal(secret);
      if (!principal)
        throw new DroverError('unauthorized', 'the token is not valid (unknown or revoked)');
      if (!allowed[access].includes(principal.role)) {
        throw new DroverError(
          'forbidden',
          `a ${principal.role} token may not ${request.method} ${request.url.split('?')[0]}`,
        );
      }
      request.principal = principal;
    });
    // A worker token acts only as the workers it names: the name is in the path, or (to
    // register) in the body, so this runs once the body is parsed.
    app.addHook('preHandler', (request: FastifyRequest, _reply, done) => {
      const principal = request.principal;
      if (principal?.role !== 'worker' || principal.workers === '*') return done();
      const name = workerNameOf(request);
      if (name !== undefined && workerMatches(principal.workers, name)) return done();
      done(
        new DroverError(
          'forbidden',
          `token ${principal.name} acts only as workers matching "${principal.workers}"` +
            (name === undefined ? '' : `, not as ${name}`),
        ),
      );
    });
  }
}

/** The worker a worker-protocol request acts as, if it names one. */
function workerNameOf(request: FastifyRequest): string | undefined {
  const params = request.params as Record<string, unknown> | undefined;
  if (typeof params?.name === 'string') return params.name;
  const body = request.body as Record<string, unknown> | undefined;
  if (body && typeof body === 'object' && typeof body.name === 'string') return body.name.trim();
  return undefined;
}

/**
 * The bearer token; for the live stream and images the browser cannot set headers, so a
 * `token` query parameter is accepted there (and only there).
 */
function tokenOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice(7).trim() || undefined;
  const path = request.url.split('?')[0]!;
  if (request.method === 'GET' && (path.endsWith('/events/stream') || path.includes('/outputs'))) {
    const q = (request.query as Record<string, unknown> | undefined)?.token;
    if (typeof q === 'string' && q.length > 0 && q.length < 200) return q;
  }
  return undefined;
}

/**
 * On a farm's first start (no token exists yet) creates an admin token and writes it to
 * `<dataDir>/admin-token` (mode 0600). Returns the admin token found in that file, if any.
 */
export async function ensureAdminToken(
  store: Store,
  auth: Authenticator,
  dataDir: string,
): Promise<string | undefined> {
  const file = join(dataDir, 'admin-token');
  if ((await store.listTokens()).length === 0) {
    await mkdir(dataDir, { recursive: true });
    const { secret } = await auth.createToken('admin', 'admin');
    await writeFile(file, `${secret}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    return secret;
  }
  try {
    const secret = (await readFile(file, 'utf8')).trim();
    return (await auth.principal(secret)) ? secret : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A user acts on its own jobs only; admins (and a manager without authentication) on all.
 * Throws `forbidden` naming the owner otherwise.
 */
export function assertMayChangeJob(
  principal: Principal | undefined,
  job: { id: string; user: string },
): void {
  if (!principal || principal.role === 'admin') return;
  if (principal.role === 'user' && job.user === principal.name) return;
  throw new DroverError(
    'forbidden',
    `job ${job.id} belongs to ${job.user || 'nobody'}; ${principal.name} may change only its own jobs`,
  );
}
