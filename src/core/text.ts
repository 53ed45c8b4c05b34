import { z } from 'zod';

/**
 * The one string schema for everything that crosses a process boundary (request bodies,
 * path parameters, query strings, worker reports). It refuses what no store or process
 * takes back intact:
 *
 * - NUL: PostgreSQL's `text` cannot hold it (the driver fails with a 500), SQLite would store
 *   it, and an argv or environment value containing it fails at `spawn` on every node.
 * - lone UTF-16 surrogates: not valid Unicode, so they cannot be encoded as UTF-8 and come
 *   back from the store as U+FFFD — a name that no longer equals what was submitted.
 *
 * Use `text()` wherever a schema would say `z.string()` (ESLint refuses `z.string()` outside
 * this file); chain `.min()`, `.max()`, `.trim()`, `.regex()` as usual. `params` are
 * `z.string`'s (e.g. `{ error: 'must be a string' }` for the message when the value is not
 * a string).
 */
export function text(params?: Parameters<typeof z.string>[0]): z.ZodString {
  return z
    .string(params)
    .regex(/^[^\0]*$/, 'must not contain NUL characters')
    .refine((s) => s.isWellFormed(), 'must be valid Unicode (no lone surrogates)');
}

/** Whether `s` is acceptable to `text()` (for values checked outside a schema). */
export function isCleanText(s: string): boolean {
  return !s.includes('\0') && s.isWellFormed();
}
