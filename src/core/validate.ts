import type { z } from 'zod';
import { invalid } from './errors.js';

/** The value at a path of an issue, or undefined when it is missing. */
function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let v = value;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** A field name as users read it: dotted, with odd keys (empty, with dots) quoted. */
function fieldName(path: readonly PropertyKey[]): string {
  return path
    .map((k) => {
      const s = String(k);
      return s === '' || /[.\s"]/.test(s) ? JSON.stringify(s.slice(0, 64)) : s.slice(0, 128);
    })
    .join('.');
}

/**
 * Parses input at the edge with its schema; on failure throws `invalid_input` naming the
 * first field at fault (`frames`, `pluginInfo.width`, `outputDirectories.0`).
 */
export function parseInput<S extends z.ZodType>(
  schema: S,
  value: unknown,
  root = 'body',
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  let path: PropertyKey[] = [...issue.path];
  let message = issue.message;
  if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) {
    path = [...path, issue.keys[0]!];
    message = 'is not a known field';
  } else if (
    issue.code === 'invalid_type' &&
    path.length > 0 &&
    valueAt(value, path) === undefined
  ) {
    message = 'is required';
  }
  throw invalid(path.length > 0 ? fieldName(path) : root, message);
}
