import type { Kysely } from 'kysely';
import type { Dialect } from './dialect.js';
import type { Database } from './schema.js';

/**
 * What a store family (`fleets.ts`, `versions.ts`, `job-store.ts`, …) gets from `SqlStore`:
 * the database, its dialect and clock, and the transaction runner every write goes through
 * (events appended inside `tx` are published with its COMMIT; see `events.ts`).
 */
export interface StoreKit {
  readonly db: Kysely<Database>;
  readonly kind: Dialect;
  now(): number;
  tx<T>(
    fn: (db: Kysely<Database>, now: number) => Promise<T>,
    options?: { wakes?: boolean },
  ): Promise<T>;
  /** A single-statement write outside `tx` (a full disk is told apart). */
  write<T>(statement: Promise<T>): Promise<T>;
  /** After a committed settings change: every manager re-reads its settings. */
  settingsChanged(): void;
  /** How long a claimed task's lease lasts (`StoreOptions.leaseTtlMs`). */
  readonly leaseTtlMs: number;
}

/** Lets I/O callbacks (requests that arrived) run before the next transaction starts. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
