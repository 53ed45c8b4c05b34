/**
 * The route contract's vocabulary: what one HTTP route declares. Every route of the manager
 * is declared once (`routes.ts`) and that declaration is the only source of
 *
 * - the Fastify route and its input validation (`src/manager/http/serve.ts`),
 * - the access check, decided from the *matched* route, never from URL text,
 * - the OpenAPI 3.1 document served at `/api/v1/openapi.json` (`openapi.ts`),
 * - the typed clients: the CLI's and the worker's (`src/client/`) and the monitor's
 *   (`web/src/api.ts`) build their requests with `requestOf` from the same declarations.
 *
 * This module is plain data and zod: the browser bundles it.
 */
import type { z } from 'zod';

export const API = '/api/v1';

/**
 * Who may call a route:
 * - `public`: anyone, no token (the health check, the OpenAPI document, the monitor's files);
 * - `read`: any admin, user or read-only token (reading the farm);
 * - `user`: admin or user tokens (submitting, acting on jobs — see `owner`);
 * - `worker`: admin or worker tokens (the worker protocol — see `owner`);
 * - `admin`: admin tokens only (settings, tokens, limits, enabling workers).
 */
export const accessLevels = ['public', 'read', 'user', 'worker', 'admin'] as const;
export type Access = (typeof accessLevels)[number];

export const rolesFor = {
  read: ['admin', 'user', 'read-only'],
  user: ['admin', 'user'],
  worker: ['admin', 'worker'],
  admin: ['admin'],
} as const satisfies Record<Exclude<Access, 'public'>, readonly string[]>;

/**
 * The ownership rule a route adds to its access level:
 * - `job`: a user token acts only on jobs it submitted (the job named by the `id` parameter);
 *   admins on every job;
 * - `worker`: a worker token acts only as the workers its pattern names (the `name`
 *   parameter, or the body's `name` to register).
 */
export type Owner = 'job' | 'worker';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** How a route answers when it does not answer JSON. */
export type ReplyKind = 'json' | 'event-stream' | 'image' | 'video' | 'html' | 'text';

export interface RouteDef<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
  R extends z.ZodType = z.ZodType,
  H extends z.ZodObject = z.ZodObject,
> {
  /** The operation's name: the OpenAPI operationId and the handler's key. */
  name: string;
  method: HttpMethod;
  /** Fastify path syntax (`/jobs/:id`), under `/api/v1` unless `root` is set. */
  path: string;
  summary: string;
  access: Access;
  owner?: Owner;
  params?: P;
  query?: Q;
  body?: B;
  /** The success reply (documentation, types, and checked against real replies by the tests). */
  reply: R;
  /** The success status (default 200). */
  status?: number;
  replyKind?: ReplyKind;
  /**
   * The browser cannot set headers on an EventSource or an `<img>`: these routes also take
   * the token as a `token` query parameter (no other route does).
   */
  tokenInQuery?: boolean;
  /** Request headers the route reads (lower-case names), documented in OpenAPI. */
  headers?: H;
  /** Served at the site root instead of under `/api/v1` (the monitor's files, `/metrics`). */
  root?: boolean;
}

/** Declares a route, keeping its schemas' types. */
export function route<
  P extends z.ZodType = z.ZodNever,
  Q extends z.ZodType = z.ZodNever,
  B extends z.ZodType = z.ZodNever,
  R extends z.ZodType = z.ZodType,
  H extends z.ZodObject = z.ZodObject,
>(def: RouteDef<P, Q, B, R, H>): RouteDef<P, Q, B, R, H> {
  return def;
}

/** The full path a route is served at (`/api/v1/jobs/:id`). */
export function fullPath(def: Pick<RouteDef, 'path' | 'root'>): string {
  return def.root ? def.path : `${API}${def.path}`;
}

/** What a client passes to call a route: the inputs its declaration has. */
export type RouteInput<D extends RouteDef> = (D['params'] extends z.ZodNever | undefined
  ? { params?: undefined }
  : { params: z.input<NonNullable<D['params']>> }) &
  (D['query'] extends z.ZodNever | undefined
    ? { query?: undefined }
    : { query?: z.input<NonNullable<D['query']>> }) &
  (D['body'] extends z.ZodNever | undefined
    ? { body?: undefined }
    : { body: z.input<NonNullable<D['body']>> });

/** The reply a route's client call resolves to. */
export type RouteReply<D extends RouteDef> = z.output<D['reply']>;

/** The request a route call makes, before the transport adds the address and the token. */
export interface RouteRequest {
  method: HttpMethod;
  /** Path with parameters filled in and percent-encoded. */
  path: string;
  query: Record<string, string>;
  body: unknown;
}

/**
 * Builds the request for a route: path parameters are percent-encoded into the declared
 * path; query values become strings (arrays joined with commas; `undefined` left out).
 */
export function requestOf(
  def: RouteDef,
  input: { params?: unknown; query?: unknown; body?: unknown } = {},
): RouteRequest {
  type Value = string | number | boolean | readonly (string | number)[] | null | undefined;
  const params = (input.params ?? {}) as Record<string, Value>;
  const path = fullPath(def).replace(/:([A-Za-z_]+)/g, (_m, key: string) => {
    const value = params[key];
    if (value === undefined || value === null) throw new Error(`${def.name}: missing ${key}`);
    return encodeURIComponent(String(value));
  });
  const query: Record<string, string> = {};
  for (const [key, value] of Object.entries((input.query ?? {}) as Record<string, Value>)) {
    if (value === undefined || value === null || value === '') continue;
    query[key] = Array.isArray(value) ? value.join(',') : String(value);
  }
  return { method: def.method, path, query, body: input.body };
}
