import type { Kysely } from 'kysely';
import type { PathMapping } from '../../core/path-mapping.js';
import { num } from './rows.js';
import type { Database } from './schema.js';

/** Every path-mapping rule, in the order they were added (the order they apply in). */
export async function list(db: Kysely<Database>): Promise<PathMapping[]> {
  const rows = await db.selectFrom('path_mappings').selectAll().orderBy('id').execute();
  return rows.map((r) => ({
    id: num(r.id),
    prefix: r.prefix,
    replacement: r.replacement,
    region: r.region,
    os: r.os,
    caseSensitive: num(r.case_sensitive) === 1,
  }));
}

export async function add(
  db: Kysely<Database>,
  rule: Omit<PathMapping, 'id'>,
): Promise<PathMapping> {
  const row = await db
    .insertInto('path_mappings')
    .values({
      prefix: rule.prefix,
      replacement: rule.replacement,
      region: rule.region,
      os: rule.os,
      case_sensitive: rule.caseSensitive ? 1 : 0,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { ...rule, id: num(row.id) };
}

/** Removes rule `id`; returns how many rules it removed (0 or 1). */
export async function remove(db: Kysely<Database>, id: number): Promise<number> {
  const r = await db.deleteFrom('path_mappings').where('id', '=', id).executeTakeFirst();
  return Number(r.numDeletedRows);
}
