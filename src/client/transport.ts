import { DroverError, errorCodes, type ErrorCode } from '../core/errors.js';
import type { ErrorReply } from '../core/api.js';

/**
 * The HTTP edge of the client: one JSON request against one of several manager addresses,
 * with a timeout, failover and the manager's error body turned back into a DroverError.
 */

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  /** Cancels the request (e.g. a long-poll when the worker stops). */
  signal?: AbortSignal;
  /** Overrides the client's timeout for this request. */
  timeoutMs?: number;
  /**
   * Sent as the `Idempotency-Key` header: the manager answers a retried submission with the
   * job the first one made.
   */
  idempotencyKey?: string;
}

export interface TransportOptions {
  urls: string[];
  token: string | undefined;
  timeoutMs: number;
}

/** Status codes the manager uses, for replies that carry no JSON error body (a proxy's 502). */
const codeByStatus: Record<number, ErrorCode> = {
  400: 'invalid_input',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'too_large',
  507: 'insufficient_storage',
};

const knownCodes = new Set<string>(errorCodes);

/**
 * Errors raised before the request reached a manager: trying the next address cannot apply
 * a request twice. Anything else (a reset or a timeout after sending) fails over only for
 * GET and for requests with an idempotency key, since a POST may already have been applied.
 */
const notConnectedCodes = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

class ConnectionFailure extends Error {
  constructor(
    message: string,
    readonly beforeSending: boolean,
  ) {
    super(message);
  }
}

export class Transport {
  readonly #urls: string[];
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  /** The address that answered last; requests go there first (sticky failover). */
  #active = 0;

  constructor(options: TransportOptions) {
    if (options.urls.length === 0) {
      throw new DroverError('invalid_input', 'url: name at least one manager address', 'url');
    }
    this.#urls = options.urls.map((u) => u.replace(/\/+$/, ''));
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs;
  }

  get url(): string {
    return this.#urls[this.#active] ?? '';
  }

  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    query?: Query,
    options: RequestOptions = {},
  ): Promise<T> {
    const failures: string[] = [];
    const count = this.#urls.length;
    for (let i = 0; i < count; i++) {
      const index = (this.#active + i) % count;
      const base = this.#urls[index] ?? '';
      try {
        const reply = await this.#once<T>(base, method, path, body, query, options);
        this.#active = index;
        return reply;
      } catch (error) {
        if (!(error instanceof ConnectionFailure)) throw error;
        failures.push(`${base}: ${error.message}`);
        // A request with an idempotency key is answered the same however often it arrives.
        const retryable =
          error.beforeSending || method === 'GET' || options.idempotencyKey !== undefined;
        if (!retryable || options.signal?.aborted) break;
      }
    }
    throw new DroverError('unavailable', `cannot reach the manager at ${failures.join('; ')}`);
  }

  async #once<T>(
    base: string,
    method: string,
    path: string,
    body: unknown,
    query: Query | undefined,
    options: RequestOptions,
  ): Promise<T> {
    const url = new URL(base + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;

    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;

    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
      text = await response.text();
    } catch (error) {
      if (options.signal?.aborted) throw new ConnectionFailure('request cancelled', false);
      if (timeout.aborted) throw new ConnectionFailure(`no reply within ${timeoutMs} ms`, false);
      const code = causeCode(error);
      const detail = causeMessage(error);
      throw new ConnectionFailure(detail, code !== undefined && notConnectedCodes.has(code));
    }

    let parsed: unknown = undefined;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (response.ok) {
      if (parsed === undefined && text.length > 0) {
        throw new DroverError('unavailable', `${base} answered ${method} ${path} with non-JSON`);
      }
      return parsed as T;
    }
    throw toDroverError(response.status, parsed, `${method} ${path}`);
  }
}

function toDroverError(status: number, body: unknown, what: string): DroverError {
  const error = (body as Partial<ErrorReply> | undefined)?.error;
  if (error && typeof error.code === 'string' && knownCodes.has(error.code)) {
    return new DroverError(
      error.code,
      typeof error.message === 'string' ? error.message : `${what} failed (${status})`,
      typeof error.field === 'string' ? error.field : undefined,
    );
  }
  const code = codeByStatus[status] ?? 'unavailable';
  return new DroverError(code, `${what} failed: the manager answered ${status}`);
}

function causeCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as Error & { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = current.cause;
  }
  return undefined;
}

function causeMessage(error: unknown): string {
  let current: unknown = error;
  let message = 'connection failed';
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (current.message) message = current.message;
    current = current.cause;
  }
  return message;
}
