import type { Kysely } from 'kysely';
import { invalid } from '../../core/errors.js';
import type { Database } from './schema.js';

/**
 * A leader lease (`Store.tryLead`): true when `holder` holds `role` after the call. One
 * statement takes the role if free, renews it if `holder`'s, takes it over if it expired;
 * concurrent callers serialize on the row, and the loser's conditional update matches
 * nothing.
 */
export async function tryLead(
  db: Kysely<Database>,
  now: number,
  role: string,
  holder: string,
  ttlMs: number,
): Promise<boolean> {
  if (role === '' || holder === '') throw invalid('role', 'role and holder must not be empty');
  if (!(ttlMs > 0)) throw invalid('ttlMs', 'must be a positive number of milliseconds');
  const expiresAt = now + Math.ceil(ttlMs);
  const row = await db
    .insertInto('leases')
    .values({ role, holder, expires_at: expiresAt })
    .onConflict((oc) =>
      oc
        .column('role')
        .doUpdateSet({ holder, expires_at: expiresAt })
        .where((eb) =>
          eb.or([eb('leases.holder', '=', holder), eb('leases.expires_at', '<=', now)]),
        ),
    )
    .returning('holder')
    .executeTakeFirst();
  return row !== undefined;
}
