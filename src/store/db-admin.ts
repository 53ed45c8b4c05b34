import { existsSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { migrations } from './migrations/index.js';
import { isPostgresUrl, redactLocation } from './open.js';
import { openPostgresDatabase } from './postgres/index.js';
import type { Dialect } from './sql/dialect.js';
import { migrate, migrationStatus as readStatus, type MigrationStatus } from './sql/migrate.js';
import { openSqliteDatabase } from './sqlite/index.js';

export type { MigrationStatus };

/** What `drover db migrate` / `drover db status` print. */
export interface MigrationReport {
  backend: Dialect;
  /** The database (a URL's password hidden). */
  location: string;
  /** Migration ids this call applied (always empty for `migrationStatus`). */
  applied: number[];
  /** Every migration Drover knows, with when it was applied (null: pending). */
  migrations: MigrationStatus[];
  /** How many are still pending. */
  pending: number;
}

async function withDatabase<T>(
  urlOrPath: string,
  fn: (db: Kysely<unknown>, dialect: Dialect) => Promise<T>,
): Promise<T> {
  const dialect: Dialect = isPostgresUrl(urlOrPath) ? 'postgres' : 'sqlite';
  const db =
    dialect === 'postgres' ? openPostgresDatabase(urlOrPath, 2) : openSqliteDatabase(urlOrPath);
  try {
    return await fn(db as unknown as Kysely<unknown>, dialect);
  } finally {
    await db.destroy();
  }
}

function reportOf(
  urlOrPath: string,
  backend: Dialect,
  applied: number[],
  status: MigrationStatus[],
): MigrationReport {
  return {
    backend,
    location: redactLocation(urlOrPath),
    applied,
    migrations: status,
    pending: status.filter((m) => m.appliedAt === null).length,
  };
}

/** Applies pending migrations to the store at `urlOrPath` (a SQLite path or postgres:// URL). */
export async function migrateStore(urlOrPath: string): Promise<MigrationReport> {
  return withDatabase(urlOrPath, async (db, dialect) => {
    const applied = await migrate(db, dialect);
    return reportOf(urlOrPath, dialect, applied, await readStatus(db));
  });
}

/**
 * Which migrations the store at `urlOrPath` has applied, changing nothing but the (empty)
 * bookkeeping table. A SQLite file that does not exist is reported all pending, not created.
 */
export async function migrationStatus(urlOrPath: string): Promise<MigrationReport> {
  if (!isPostgresUrl(urlOrPath) && (urlOrPath === ':memory:' || !existsSync(urlOrPath))) {
    const status = migrations.map((m) => ({ id: m.id, name: m.name, appliedAt: null }));
    return reportOf(urlOrPath, 'sqlite', [], status);
  }
  return withDatabase(urlOrPath, async (db, dialect) =>
    reportOf(urlOrPath, dialect, [], await readStatus(db)),
  );
}
