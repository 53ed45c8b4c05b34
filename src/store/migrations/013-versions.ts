import type { Kysely } from 'kysely';
import type { Dialect } from '../sql/dialect.js';

/**
 * Products and versions (issue 15). A product row holds the counter its versions are
 * numbered from (advanced by one upsert, so two managers never hand out one number); a
 * version is unique by (product, number) and by folder (no two versions share a folder).
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  await db.schema
    .createTable('products')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('last_version', 'integer', (c) => c.notNull())
    .addColumn('created_at', big, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('versions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('product', 'text', (c) => c.notNull().references('products.name'))
    .addColumn('number', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text')
    .addColumn('review_job_id', 'text')
    .addColumn('submitted_by', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('submitted_at', big, (c) => c.notNull())
    .addColumn('comment', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('folder', 'text', (c) => c.notNull())
    .addColumn('representations', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('missing_frames', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('thumbnail', 'text')
    .addColumn('movie', 'text')
    .addColumn('scene', 'text')
    .addColumn('error', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('reviewed_by', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('reviewed_at', big)
    .addColumn('review_comment', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('updated_at', big, (c) => c.notNull())
    .addUniqueConstraint('versions_product_number', ['product', 'number'])
    .addUniqueConstraint('versions_folder', ['folder'])
    .execute();
  await db.schema.createIndex('versions_job').on('versions').column('job_id').execute();
  await db.schema
    .createIndex('versions_review_job')
    .on('versions')
    .column('review_job_id')
    .execute();
  await db.schema
    .createIndex('versions_status')
    .on('versions')
    .columns(['product', 'status', 'number'])
    .execute();
}
