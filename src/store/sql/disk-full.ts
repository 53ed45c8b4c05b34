/**
 * Whether a failed statement failed because the store's disk (or quota) is full: SQLite's
 * `SQLITE_FULL` (also what `PRAGMA max_page_count` produces) and PostgreSQL's `disk_full`
 * SQLSTATE 53100 ("could not extend file … No space left on device"). Both roll the
 * transaction back, so nothing was changed, and both last until someone frees space.
 */
export function isDiskFull(err: unknown): boolean {
  if (typeof err !== 'object' || err === null || !('code' in err)) return false;
  return err.code === 'SQLITE_FULL' || err.code === '53100';
}
