import { sql, type Kysely } from 'kysely';

/**
 * Live token names are unique: ownership of jobs is decided by the token's name, so a second
 * live "alice" would act on alice's jobs. Where a store already holds live duplicates, the
 * oldest keeps the name and the later ones are revoked (a later duplicate is the one that
 * could have been made to impersonate); a revoked name may be used again.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    update tokens set revoked_at = created_at
    where revoked_at is null
      and exists (
        select 1 from tokens older
        where older.name = tokens.name and older.revoked_at is null
          and (older.created_at < tokens.created_at
               or (older.created_at = tokens.created_at and older.id < tokens.id)))
  `.execute(db);
  await sql`create unique index tokens_live_name on tokens (name) where revoked_at is null`.execute(
    db,
  );
}
