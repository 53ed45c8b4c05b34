import { DroverError, type ErrorCode } from '../core/errors.js';

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
  if (err instanceof DroverError) {
    process.stderr.write(`drover: ${err.message}\n`);
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
