import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { StoreOptions } from '../contract.js';
import { migrate } from '../sql/migrate.js';
import type { Database } from '../sql/schema.js';
import { SqlStore } from '../sql/store.js';
import { ensureWritableDirectory, unwritable } from './writable.js';

/**
 * Kysely's SQLite driver prepares every statement on every call; re-preparing the claim
 * query per request cost 1.7× on the hot path (DESIGN.md). This keeps prepared statements by
 * their SQL text (the text is the same for every call of one query shape).
 */
function withStatementCache(db: BetterSqlite3.Database, max = 512) {
  const cache = new Map<string, BetterSqlite3.Statement>();
  let noop: BetterSqlite3.Statement | undefined;
  return {
    close: () => db.close(),
    prepare: (sqlText: string) => {
      // SQLite rolls a transaction back by itself on some errors (SQLITE_FULL among them:
      // a full disk). Kysely then sends ROLLBACK anyway, which fails with "cannot rollback -
      // no transaction is active" and replaces the error that matters; that secondary error
      // is what a full disk used to show, once per request. Nothing is left to roll back.
      if (sqlText === 'rollback' && !db.inTransaction)
        return (noop ??= db.prepare('select 1 where 0'));
      let stmt = cache.get(sqlText);
      if (!stmt) {
        stmt = db.prepare(sqlText);
        if (cache.size >= max) cache.delete(cache.keys().next().value!);
        cache.set(sqlText, stmt);
      }
      return stmt;
    },
  };
}

/**
 * Opens (creating) the SQLite database at `file` without migrating. WAL lets readers run
 * beside the writer; synchronous=NORMAL keeps commits durable across process crashes (not
 * power loss) at a fraction of FULL's fsync cost.
 */
export function openSqliteDatabase(file: string): Kysely<Database> {
  if (file !== ':memory:') ensureWritableDirectory(dirname(file), "the store's folder");
  let sqlite: BetterSqlite3.Database;
  try {
    sqlite = new BetterSqlite3(file);
    // The first write: WAL mode needs the folder writable (for -wal and -shm files) too.
    sqlite.pragma('journal_mode = WAL');
  } catch (err) {
    throw unwritable('the SQLite store', file, err);
  }
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  // Checkpoint the WAL every ≈40 MB instead of SQLite's default ≈4 MB: a checkpoint fsyncs
  // and rewrites the hot pages (the job row, the indexes' upper levels) once however often
  // they changed since the last one. BENCHMARKS.md, scenario 1: commits were ≈70% of the
  // store's time at 1,000 pages; a commit-heavy loop here ran 1.6× faster at 10,000.
  sqlite.pragma('wal_autocheckpoint = 10000');
  return new Kysely<Database>({
    dialect: new SqliteDialect({
      database: withStatementCache(sqlite),
    }),
  });
}

/** Opens (creating and migrating) the SQLite store at `file` (`:memory:` for a throw-away one). */
export async function openSqliteStore(file: string, options: StoreOptions = {}): Promise<SqlStore> {
  const db = openSqliteDatabase(file);
  await migrate(db as unknown as Kysely<unknown>, 'sqlite');
  return new SqlStore(db, 'sqlite', options);
}
