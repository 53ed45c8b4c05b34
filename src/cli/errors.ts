import { DroverError, type ErrorCode } from '../core/errors.js';
import { unwritable } from '../store/sqlite/writable.js';
import { terminalSafe } from './output.js';

/** The one place typed errors become exit codes. */
export const exitCodeOf: Record<ErrorCode, number> = {
  invalid_input: 2,
  too_large: 2,
  not_found: 3,
  conflict: 4,
  lease_lost: 4,
  unauthorized: 5,
  forbidden: 5,
  unavailable: 6,
  insufficient_storage: 7,
};

/** A command's own failure that is not an error of the farm (e.g. the waited-for job failed). */
export class CommandFailed extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Prints what went wrong and what to do, and returns the exit code. */
export function reportError(err: unknown): number {
  // A file the command had to write and could not (a log, a token file): what and why, not
  // a stack trace.
  if (!(err instanceof DroverError) && isFileSystemRefusal(err)) {
    err = unwritable('', err.path, err);
  }
  if (err instanceof DroverError) {
    process.stderr.write(`drover: ${terminalSafe(err.message)}\n`);
    if (err.code === 'unavailable') {
      process.stderr.write(
        '  Is the manager running? Start one with `drover dev` or `drover manager`,\n  or point at it with --url / DROVER_URL.\n',
      );
    }
    return exitCodeOf[err.code];
  }
  if (err instanceof CommandFailed) {
    process.stderr.write(`drover: ${err.message}\n`);
    return err.exitCode;
  }
  process.stderr.write(
    `drover: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  return 1;
}

function isFileSystemRefusal(err: unknown): err is NodeJS.ErrnoException & { path: string } {
  return (
    err instanceof Error &&
    typeof (err as NodeJS.ErrnoException).path === 'string' &&
    ['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'ENOSPC', 'EDQUOT'].includes(
      (err as NodeJS.ErrnoException).code ?? '',
    )
  );
}
