import type { Kysely } from 'kysely';

/**
 * Deadline's ResumeOnFailedDependencies and ResumeOnDeletedDependencies (both off by
 * default, as in Deadline): whether a job waiting for a dependency that failed, or was
 * deleted before it completed, counts that dependency as done. Jobs stored before this keep
 * Deadline's default (off).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('jobs')
    .addColumn('resume_on_failed_deps', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .alterTable('jobs')
    .addColumn('resume_on_deleted_deps', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
