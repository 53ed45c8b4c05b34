import { renameSync, rmSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';

/**
 * A consistent copy of a live SQLite store, taken with SQLite's online backup API while
 * managers keep writing to it: the copy is one snapshot of the database (the backup
 * restarts by itself when a write lands between two steps, so it never mixes two states).
 * It is written next to the destination under a temporary name and renamed when complete,
 * so a file at `destination` is always a whole backup. Restoring is copying it back as the
 * data folder's `drover.db` (with no `-wal`/`-shm` files beside it) and starting a manager.
 */

export interface BackupOptions {
  /** Pages copied per step; the source stays writable between steps (default 1024). */
  pagesPerStep?: number;
}

export interface BackupReport {
  source: string;
  destination: string;
  bytes: number;
  pages: number;
  durationMs: number;
}

export async function backupSqliteStore(
  source: string,
  destination: string,
  options: BackupOptions = {},
): Promise<BackupReport> {
  const from = resolve(source);
  const to = resolve(destination);
  if (from === to) throw new Error('the backup must go to another file than the store');
  const started = Date.now();
  const db = new Database(from, { readonly: true, fileMustExist: true });
  // Readers of a WAL database wait for a checkpoint rather than fail at once.
  db.pragma('busy_timeout = 5000');
  const tmp = `${to}.partial-${process.pid}`;
  let pages = 0;
  try {
    const step = options.pagesPerStep ?? 1024;
    const result = await db.backup(tmp, {
      progress: ({ totalPages }) => {
        pages = totalPages;
        return step;
      },
    });
    pages = result.totalPages;
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  } finally {
    db.close();
  }
  // The copy must open and pass SQLite's own check before it replaces anything.
  const copy = new Database(tmp, { fileMustExist: true });
  try {
    const check = copy.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`the backup failed SQLite's check: ${String(check)}`);
    // Fold any WAL of the copy into the file: the backup is one self-contained file.
    copy.pragma('wal_checkpoint(TRUNCATE)');
  } catch (error) {
    copy.close();
    rmSync(tmp, { force: true });
    throw error;
  }
  copy.close();
  renameSync(tmp, to);
  return {
    source: from,
    destination: to,
    bytes: statSync(to).size,
    pages,
    durationMs: Date.now() - started,
  };
}
