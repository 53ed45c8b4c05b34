/**
 * Typed errors. Every failure a user can cause or meet carries a stable `code`; the HTTP
 * layer maps codes to status codes once (`src/manager/http/errors.ts`) and the CLI maps
 * them to exit codes once (`src/cli/errors.ts`).
 */
export const errorCodes = [
  'invalid_input',
  'not_found',
  'conflict',
  'lease_lost',
  'unauthorized',
  'forbidden',
  'too_large',
  'unavailable',
  'insufficient_storage',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

/**
 * Codes that mean "nothing was changed and the same request may succeed later" (the manager
 * or its store is unreachable, its disk is full): a worker keeps its results and retries.
 */
export function isTemporary(
  code: string | undefined,
): code is undefined | 'unavailable' | 'insufficient_storage' {
  return code === undefined || code === 'unavailable' || code === 'insufficient_storage';
}

export class DroverError extends Error {
  readonly code: ErrorCode;
  /** The input field at fault (dotted path), when there is one. */
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, field?: string) {
    super(message);
    this.name = 'DroverError';
    this.code = code;
    this.field = field;
  }
}

export function invalid(field: string, message: string): DroverError {
  return new DroverError('invalid_input', `${field}: ${message}`, field);
}

export function notFound(what: string): DroverError {
  return new DroverError('not_found', `${what} not found`);
}

export function conflict(message: string): DroverError {
  return new DroverError('conflict', message);
}

/** A report for a task whose lease is no longer the current one (expired, revoked, reassigned). */
export function leaseLost(lease: string): DroverError {
  return new DroverError(
    'lease_lost',
    `lease ${lease} is no longer current: the task was requeued, cancelled or given to another worker`,
  );
}

/**
 * The store's disk (or database quota) is full: the write was refused and rolled back. It
 * lasts until space is freed, so it is neither the caller's fault nor worth retrying at once.
 */
export function insufficientStorage(detail?: string): DroverError {
  return new DroverError(
    'insufficient_storage',
    `the store's disk is full; nothing was changed${detail ? ` (${detail})` : ''}. Free space on the manager's data disk, then try again`,
  );
}
