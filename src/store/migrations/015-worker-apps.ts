import type { Kysely } from 'kysely';
import type { Dialect } from '../sql/dialect.js';

/**
 * The application plugins a worker offers besides the built-in ones (`--apps-dir`), a JSON
 * list of names given at registration. Workers registered before this, and workers of older
 * versions that send none, offer the built-in plugins only.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .alterTable('workers')
    .addColumn('apps', 'text', (c) => c.notNull().defaultTo('[]'))
    .execute();
}
