import { sql, type Kysely } from 'kysely';
import type { LimitUsage } from '../../core/types.js';
import type { StoreKit } from './kit.js';
import type { Database } from './schema.js';
import { json, num } from './rows.js';

/** Gives back the limits a task held while it rendered (in name order, as `takeLimits`). */
export async function releaseLimits(db: Kysely<Database>, heldLimits: string): Promise<void> {
  for (const name of [...json<string[]>(heldLimits)].sort()) {
    await db
      .updateTable('limits')
      .set({ in_use: sql`case when in_use > 0 then in_use - 1 else 0 end` })
      .where('name', '=', name)
      .execute();
  }
}

/**
 * Takes one unit of each existing limit of `names`; returns the names it took, or undefined
 * (taking nothing) when one of them is used up. Each unit is taken by one conditional UPDATE
 * (`in_use < max`), so concurrent claims on several connections cannot overrun a limit
 * whatever they read before; names go in sorted order so two claims lock limit rows in the
 * same order.
 */
export async function takeLimits(
  db: Kysely<Database>,
  names: readonly string[],
  existing: ReadonlySet<string>,
): Promise<string[] | undefined> {
  const wanted = [...new Set(names.filter((n) => existing.has(n)))].sort();
  const taken: string[] = [];
  for (const name of wanted) {
    const r = await db
      .updateTable('limits')
      .set({ in_use: sql`in_use + 1` })
      .where('name', '=', name)
      .whereRef('in_use', '<', 'max')
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) {
      await releaseLimits(db, JSON.stringify(taken));
      return undefined;
    }
    taken.push(name);
  }
  return taken;
}

export async function setLimit(kit: StoreKit, name: string, max: number): Promise<LimitUsage> {
  const limit = await kit.tx(async (db) => {
    await db
      .insertInto('limits')
      .values({ name, max, in_use: 0 })
      .onConflict((oc) => oc.column('name').doUpdateSet({ max }))
      .execute();
    const row = await db
      .selectFrom('limits')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirstOrThrow();
    return { name: row.name, max: num(row.max), inUse: num(row.in_use) };
  });
  kit.settingsChanged();
  return limit;
}

export async function listLimits(kit: StoreKit): Promise<LimitUsage[]> {
  const rows = await kit.db.selectFrom('limits').selectAll().orderBy('name').execute();
  return rows.map((r) => ({ name: r.name, max: num(r.max), inUse: num(r.in_use) }));
}
