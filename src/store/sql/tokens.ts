import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Role, TokenInfo } from '../../core/auth.js';
import { conflict, notFound, type DroverError } from '../../core/errors.js';
import type { StoreKit } from './kit.js';
import { tokenFromRow } from './rows.js';
import type { Database } from './schema.js';
import { isUniqueViolation } from './transient.js';

/** A new token's record (its id is random; nothing is stored yet). */
export function newToken(
  token: { name: string; role: Role; workers?: string },
  now: number,
): TokenInfo {
  return {
    id: randomBytes(6).toString('hex'),
    name: token.name,
    role: token.role,
    createdAt: now,
    revokedAt: null,
    workers: token.workers ?? '*',
  };
}

/** The refusal of a second live token with one name. */
export function nameTaken(name: string): DroverError {
  return conflict(`a live token is named ${name}: revoke it first or choose another name`);
}

/**
 * Stores `info` with the SHA-256 `hash` of its secret. Ownership of jobs goes by token name,
 * so live names are unique: refused here when one is live, and by the index
 * `tokens_live_name` (a unique violation) when two managers race.
 */
export async function insert(db: Kysely<Database>, info: TokenInfo, hash: string): Promise<void> {
  const live = await db
    .selectFrom('tokens')
    .select('id')
    .where('name', '=', info.name)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (live) throw nameTaken(info.name);
  await db
    .insertInto('tokens')
    .values({
      id: info.id,
      name: info.name,
      role: info.role,
      hash,
      created_at: info.createdAt,
      revoked_at: null,
      workers: info.workers,
    })
    .execute();
}

/** The live (not revoked) token with this hash. */
export async function find(db: Kysely<Database>, hash: string): Promise<TokenInfo | undefined> {
  const row = await db
    .selectFrom('tokens')
    .selectAll()
    .where('hash', '=', hash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row ? tokenFromRow(row) : undefined;
}

export async function list(db: Kysely<Database>): Promise<TokenInfo[]> {
  const rows = await db
    .selectFrom('tokens')
    .selectAll()
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  return rows.map(tokenFromRow);
}

/** Revokes live token `id` at `now`; not found when there is no such live token. */
export async function revoke(db: Kysely<Database>, now: number, id: string): Promise<TokenInfo> {
  const row = await db
    .updateTable('tokens')
    .set({ revoked_at: now })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .returningAll()
    .executeTakeFirst();
  if (!row) throw notFound(`live token ${id}`);
  return tokenFromRow(row);
}

/** `Store.createToken`: a new token, stored in its own transaction. */
export async function create(
  kit: StoreKit,
  token: {
    name: string;
    role: Role;
    hash: string;
    workers?: string;
  },
): Promise<TokenInfo> {
  const info = newToken(token, kit.now());
  try {
    await kit.tx((db) => insert(db, info, token.hash), { wakes: false });
  } catch (err) {
    if (isUniqueViolation(err)) throw nameTaken(info.name);
    throw err;
  }
  // A manager may have cached this hash as unknown.
  kit.settingsChanged();
  return info;
}
