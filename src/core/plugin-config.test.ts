import { describe, expect, it } from 'vitest';
import { DroverError } from './errors.js';
import { applyConfig, type ConfigEntry } from './plugin-config.js';

const entries: ConfigEntry[] = [
  { key: 'root', type: 'path', label: 'Root', default: '' },
  { key: 'pool', type: 'string', label: 'Pool', default: '' },
  { key: 'notes', type: 'multiline', label: 'Notes', default: '' },
];

function refusal(changes: Record<string, unknown>): DroverError {
  try {
    applyConfig(entries, {}, changes);
  } catch (err) {
    if (err instanceof DroverError) return err;
    throw err;
  }
  throw new Error(`accepted: ${JSON.stringify(changes)}`);
}

describe('path settings', () => {
  it.each(['/mnt/gfs', 'C:\\gfs', '\\\\host\\gfs', ''])(
    'accept %j (absolute, or blank)',
    (root) => {
      expect(applyConfig(entries, {}, { root }).root).toBe(root);
    },
  );

  it.each(['../../etc', 'gfs', './gfs', '/mnt/../etc', '/mnt/gfs/..', 'C:\\gfs\\..\\x'])(
    'refuse %j',
    (root) => {
      const err = refusal({ root });
      expect(err.code).toBe('invalid_input');
      expect(err.field).toBe('config.root');
      expect(err.message).toMatch(/absolute path/);
    },
  );
});

describe('text settings', () => {
  it.each<[string, string]>([
    ['root', '/mnt/\u0000gfs'],
    ['pool', 'a\u0000'],
    ['notes', 'line\n\u0000'],
    ['pool', 'a\ud800'],
  ])('refuse NUL and lone surrogates in %s', (key, value) => {
    const err = refusal({ [key]: value });
    expect(err.field).toBe(`config.${key}`);
    expect(err.message).toMatch(/NUL/);
  });
});
