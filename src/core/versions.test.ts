import { describe, expect, it } from 'vitest';
import {
  checkWithinRoots,
  isWithin,
  parseRoots,
  productProblem,
  resolveTemplate,
  templateProblem,
  versionFolder,
  versionName,
} from './versions.js';

describe('product paths', () => {
  it('takes segments of safe characters', () => {
    expect(productProblem('show/seq010/sh010/lightingMain')).toBeUndefined();
    expect(productProblem('demo/seq010/sh010/beauty_v2.1-x')).toBeUndefined();
  });
  it.each([
    ['', 'empty'],
    ['a/../b', '".."'],
    ['a/./b', '"."'],
    ['a//b', 'empty segment'],
    ['/a', 'empty segment'],
    ['a/', 'empty segment'],
    ['.hidden/x', 'segment'],
    ['-x', 'segment'],
    ['a b', 'segment'],
    ['a\\b', 'segment'],
    ['x'.repeat(65), 'segment'],
    ['a/'.repeat(8) + 'a', 'at most 8 segments'],
    [('abcdefghij/'.repeat(19) + 'abcdefghij').slice(0, 201), 'at most 200'],
  ])('refuses %j (%s)', (product, why) => {
    expect(productProblem(product)).toContain(why);
  });
});

describe('folder templates', () => {
  it('resolves the default template with a zero-padded version', () => {
    expect(versionName(7)).toBe('v007');
    expect(versionName(1234)).toBe('v1234');
    expect(
      versionFolder(
        { roots: ['/pub/'], template: '{root}/{product}/v{version:03}' },
        'demo/sh010/beauty',
        7,
      ),
    ).toBe('/pub/demo/sh010/beauty/v007');
    expect(
      resolveTemplate('{root}/{product}/publish/v{version}', {
        root: 'C:\\p',
        product: 'a',
        version: 12,
      }),
    ).toBe('C:\\p/a/publish/v12');
  });
  it('refuses templates that could leave the roots or lack a part', () => {
    expect(templateProblem('{root}/../{product}/v{version:03}')).toContain('..');
    expect(templateProblem('/elsewhere/{product}/v{version:03}')).toContain('{root}');
    expect(templateProblem('{root}/v{version:03}')).toContain('{product}');
    expect(templateProblem('{root}/{product}')).toContain('{version}');
    expect(templateProblem('{root}/{product}/{user}/v{version}')).toContain('only');
    expect(() =>
      versionFolder({ roots: [], template: '{root}/{product}/v{version:03}' }, 'a', 1),
    ).toThrow(/not configured/);
  });
  it('tells inside from outside by whole segments', () => {
    expect(isWithin('/a/b/c', '/a/b')).toBe(true);
    expect(isWithin('/a/b', '/a/b')).toBe(true);
    expect(isWithin('/a/bc', '/a/b')).toBe(false);
    expect(isWithin('/a/b/../c', '/a/b')).toBe(false);
    expect(isWithin('C:\\x\\y', 'C:\\x')).toBe(true);
    expect(isWithin('C:\\x\\y', '/x')).toBe(false);
    expect(() => checkWithinRoots('/other/v001', ['/pub'], 'folder')).toThrow(/publish roots/);
    expect(() => checkWithinRoots('/pub', ['/pub'], 'folder')).toThrow(/publish roots/);
    expect(parseRoots(' /a/ , /b;/c ')).toEqual(['/a', '/b', '/c']);
    expect(() => parseRoots('relative/x')).toThrow(/roots/);
  });
});
