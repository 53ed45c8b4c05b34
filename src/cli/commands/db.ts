import { join, resolve } from 'node:path';
import { migrateStore, migrationStatus, type MigrationReport } from '../../store/db-admin.js';
import { isPostgresUrl } from '../../store/open.js';
import { backupSqliteStore } from '../../store/sqlite/backup.js';
import { DroverError } from '../../core/errors.js';
import { formatTime, printJson, printTable } from '../output.js';

export interface DbOptions {
  db?: string;
  data: string;
  json?: boolean;
}

/** The store a command means: --db, DROVER_DB, or the data folder's SQLite file. */
function location(o: DbOptions): string {
  const db = o.db ?? process.env.DROVER_DB;
  if (db) return isPostgresUrl(db) ? db : resolve(db);
  return join(resolve(o.data), 'drover.db');
}

function print(report: MigrationReport, o: DbOptions): void {
  if (o.json) return printJson(report);
  process.stdout.write(`${report.backend} ${report.location}\n`);
  printTable(
    ['MIGRATION', 'NAME', 'APPLIED'],
    report.migrations.map((m) => [
      String(m.id),
      m.name,
      m.appliedAt === null ? 'pending' : formatTime(m.appliedAt),
    ]),
  );
}

/** `drover db migrate`: applies pending migrations (the manager also does at start). */
export async function dbMigrate(o: DbOptions): Promise<void> {
  print(await migrateStore(location(o)), o);
}

/** `drover db status`: which migrations are applied. */
export async function dbStatus(o: DbOptions): Promise<void> {
  print(await migrationStatus(location(o)), o);
}

/**
 * `drover db backup FILE`: a consistent copy of a live SQLite store (managers may keep
 * running). PostgreSQL has its own tools for this (`pg_dump`).
 */
export async function dbBackup(file: string, o: DbOptions): Promise<void> {
  const source = location(o);
  if (isPostgresUrl(source)) {
    throw new DroverError(
      'invalid_input',
      'db backup copies a SQLite store; back up PostgreSQL with pg_dump',
      'db',
    );
  }
  const report = await backupSqliteStore(source, file);
  if (o.json) return printJson(report);
  process.stdout.write(
    `backed up ${report.source} to ${report.destination} ` +
      `(${report.bytes} bytes, ${report.durationMs} ms)\n`,
  );
}
