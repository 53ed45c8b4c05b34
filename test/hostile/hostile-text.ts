import fc from 'fast-check';

/**
 * Generators for text no store takes back intact: NUL (PostgreSQL's `text` refuses it with
 * a driver error; SQLite stores it) and lone UTF-16 surrogates (not Unicode: they cannot be
 * encoded as UTF-8 and come back as U+FFFD), hidden inside otherwise valid values.
 */

/** The characters `text()` refuses. */
export const badChars = ['\u0000', '\ud800', '\udbff', '\udc00', '\udfff'] as const;

/** A short printable value with a NUL or a lone surrogate somewhere in it. */
export const tainted: fc.Arbitrary<string> = fc
  .tuple(
    fc.string({ unit: 'grapheme-ascii', maxLength: 12 }),
    fc.constantFrom(...badChars),
    fc.string({ unit: 'grapheme-ascii', maxLength: 12 }),
  )
  .map(([a, bad, b]) => a + bad + b);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Where a string sits in a body: a value at `path`, or a key of the object at `path`. */
interface Leaf {
  path: (string | number)[];
  key: boolean;
}

function leaves(value: Json, path: (string | number)[] = []): Leaf[] {
  if (typeof value === 'string') return [{ path, key: false }];
  if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, [...path, i]));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => [
      // Keys of records the user names (extraInfo, environment, pluginInfo, config).
      ...(path.length > 0 ? [{ path: [...path, k], key: true }] : []),
      ...leaves(v, [...path, k]),
    ]);
  }
  return [];
}

/** `body` with the string at `leaf` (or that key) replaced by `bad`. */
function replaced(body: Json, leaf: Leaf, bad: string): Json {
  const copy = structuredClone(body);
  const parentPath = leaf.path.slice(0, -1);
  const last = leaf.path.at(-1)!;
  let parent: Record<string | number, Json> = copy as Record<string, Json>;
  for (const k of parentPath) parent = parent[k] as Record<string | number, Json>;
  if (leaf.key) {
    // Rebuilt so the renamed key keeps its place.
    const entries = Object.entries(parent).map(([k, v]): [string, Json] =>
      k === String(last) ? [bad, v] : [k, v],
    );
    for (const k of Object.keys(parent)) delete parent[k];
    Object.assign(parent, Object.fromEntries(entries));
  } else {
    parent[last] = bad;
  }
  return copy;
}

/** A field name as the manager reports it (`limits.0`, `extraInfo.shot`). */
export function fieldOf(path: (string | number)[]): string {
  return path.map(String).join('.');
}

/**
 * A valid body with one of its strings — a value or a key of a nested object — tainted
 * with NUL or a lone surrogate. `field` is what the refusal must name: the value's path, or
 * for a key the object holding it (the key itself is the bad text). Undefined when the
 * body holds no string.
 */
export function taintLeaf(
  valid: Record<string, unknown>,
): fc.Arbitrary<{ body: Json; field: string; key: boolean }> | undefined {
  const body = valid as Json;
  const all = leaves(body);
  if (all.length === 0) return undefined;
  return fc.tuple(fc.constantFrom(...all), tainted).map(([leaf, bad]) => ({
    body: replaced(body, leaf, bad),
    field: fieldOf(leaf.key ? leaf.path.slice(0, -1) : leaf.path),
    key: leaf.key,
  }));
}

/**
 * A path segment or query value as a client would send it: percent-encoded UTF-8, except
 * that a lone surrogate (which `encodeURIComponent` refuses) is sent as the three bytes
 * WTF-8 gives it — invalid UTF-8 the manager must refuse, not choke on.
 */
export function encodeSegment(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c >= 0xd800 && c <= 0xdfff) {
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('');
    } else {
      out += encodeURIComponent(ch);
    }
  }
  return out;
}
