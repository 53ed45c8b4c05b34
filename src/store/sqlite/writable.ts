import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DroverError } from '../../core/errors.js';

/** Why a path could not be written, in words, for the error codes a file system gives. */
const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EEXIST: 'a file of that name is in the way',
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  ENOENT: 'a part of the path does not exist',
  ENAMETOOLONG: 'the path is too long',
  SQLITE_CANTOPEN: 'SQLite cannot open the database file there',
  SQLITE_READONLY: 'the database file or its folder is read-only',
  SQLITE_FULL: 'the disk is full',
};

/**
 * The error a user sees when the manager's data cannot be written: what, where, why, and
 * what to do — instead of a stack trace. Code `insufficient_storage` (exit code 7).
 */
export function unwritable(what: string, path: string, err: unknown): DroverError {
  const code =
    typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
      ? err.code
      : undefined;
  const reason = (code && REASONS[code]) ?? (err instanceof Error ? err.message : 'unknown reason');
  const e = new DroverError(
    'insufficient_storage',
    `cannot write ${what ? `${what} ` : ''}${path}: ${reason}${code ? ` (${code})` : ''} — choose one this user can write (--data), or fix it`,
  );
  e.cause = err;
  return e;
}

/**
 * Creates `dir` if needed and proves it can be written (a probe file, removed again), so a
 * manager fails at start with one clear line rather than on its first write or with a
 * stack trace. Running as root, permission bits do not stop it; a read-only mount or a
 * file in the way still does.
 */
export function ensureWritableDirectory(dir: string, what = 'the data directory'): void {
  try {
    mkdirSync(dir, { recursive: true });
    const probe = join(dir, `.drover-write-check-${process.pid}`);
    writeFileSync(probe, '');
    rmSync(probe, { force: true });
  } catch (err) {
    throw unwritable(what, dir, err);
  }
}
