import type { Store } from './contract.js';
import { openPostgresStore, type PostgresStoreOptions } from './postgres/index.js';
import { openSqliteStore } from './sqlite/index.js';

/** A `postgres://` or `postgresql://` URL (anything else is a SQLite file path). */
export function isPostgresUrl(urlOrPath: string): boolean {
  return /^postgres(ql)?:\/\//i.test(urlOrPath);
}

/**
 * Opens the store the CLI's `--db` / `DROVER_DB` names: PostgreSQL for a `postgres://…` or
 * `postgresql://…` URL (several managers may share it), otherwise the SQLite file at that
 * path (`:memory:` for a throw-away one). Either is migrated on open. `poolSize` applies to
 * PostgreSQL only.
 */
export function openStore(urlOrPath: string, options: PostgresStoreOptions = {}): Promise<Store> {
  if (isPostgresUrl(urlOrPath)) return openPostgresStore(urlOrPath, options);
  const { poolSize: _poolSize, ...sqliteOptions } = options;
  return openSqliteStore(urlOrPath, sqliteOptions);
}

/** The location for messages: a URL's password is replaced by `***`. */
export function redactLocation(urlOrPath: string): string {
  if (!isPostgresUrl(urlOrPath)) return urlOrPath;
  try {
    const u = new URL(urlOrPath);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}
