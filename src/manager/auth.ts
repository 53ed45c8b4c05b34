import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Principal, Role, TokenInfo } from '../core/auth.js';
import type { Store } from '../store/contract.js';
import type { AccessControl } from './http/serve.js';

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * Cached lookups, kept at most this long: the safety net for a lost settings notification
 * (a revocation through any manager clears every manager's cache when it is heard, within a
 * second). Open event streams re-check their token at the same pace.
 */
export const CACHE_MS = 5_000;
const MAX_CACHE = 10_000;

/**
 * Tokens and their principals (the `AccessControl` the route contract's server asks). A
 * token's secret is never stored, only its SHA-256.
 */
export class Authenticator implements AccessControl {
  private cache = new Map<string, { principal: Principal | undefined; at: number }>();
  /** Bumped by `forget`: a lookup that started before it is not cached. */
  private generation = 0;

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
    this.forget();
    return info;
  }

  /** Drops every cached lookup (a token was created or revoked, here or through another manager). */
  forget(): void {
    this.cache.clear();
    this.generation++;
  }

  async principal(secret: string): Promise<Principal | undefined> {
    const hash = hashToken(secret);
    const hit = this.cache.get(hash);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.principal;
    const generation = this.generation;
    const token = await this.store.findToken(hash);
    const principal = token
      ? { tokenId: token.id, name: token.name, role: token.role, workers: token.workers }
      : undefined;
    if (generation !== this.generation) return principal;
    if (this.cache.size >= MAX_CACHE) this.cache.clear();
    this.cache.set(hash, { principal, at: Date.now() });
    return principal;
  }

  async jobOwner(id: string): Promise<string | undefined> {
    return (await this.store.fetchJob(id))?.user;
  }
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
