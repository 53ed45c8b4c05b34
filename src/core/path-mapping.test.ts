import { describe, expect, it } from 'vitest';
import { mapArgument, mapPath, mapTaskPaths, rulesFor, type PathMapping } from './path-mapping.js';

const rules: PathMapping[] = [
  {
    id: 1,
    prefix: '/gfs/',
    replacement: '/mnt/oregon/',
    region: 'us-west-2',
    os: '',
    caseSensitive: true,
  },
  {
    id: 2,
    prefix: '/gfs/',
    replacement: '/mnt/london/',
    region: 'eu-west-2',
    os: '',
    caseSensitive: true,
  },
  {
    id: 3,
    prefix: '/gfs/show/',
    replacement: 'S:\\show\\',
    region: '',
    os: 'win32',
    caseSensitive: false,
  },
];

describe('path mapping', () => {
  it("picks the rules of the worker's region and OS, longest prefix first", () => {
    expect(rulesFor(rules, { region: 'us-west-2', os: 'linux' }).map((r) => r.id)).toEqual([1]);
    expect(rulesFor(rules, { region: 'us-west-2', os: 'win32' }).map((r) => r.id)).toEqual([3, 1]);
  });

  it('rewrites the prefix, turns separators for Windows, leaves other paths alone', () => {
    const oregon = rulesFor(rules, { region: 'us-west-2', os: 'linux' });
    expect(mapPath('/gfs/show/shot/v1', oregon, 'linux')).toBe('/mnt/oregon/show/shot/v1');
    expect(mapPath('/elsewhere/x', oregon, 'linux')).toBe('/elsewhere/x');
    const win = rulesFor(rules, { region: 'eu-west-2', os: 'win32' });
    expect(mapPath('/GFS/SHOW/shot/v1', win, 'win32')).toBe('S:\\show\\shot\\v1');
  });

  it('maps arguments whole or after =', () => {
    const oregon = rulesFor(rules, { region: 'us-west-2', os: 'linux' });
    expect(mapArgument('--out=/gfs/a', oregon, 'linux')).toBe('--out=/mnt/oregon/a');
    expect(mapArgument('-o', oregon, 'linux')).toBe('-o');
  });

  it('maps every path a task carries', () => {
    const london = rulesFor(rules, { region: 'eu-west-2', os: 'linux' });
    const mapped = mapTaskPaths(
      {
        pluginInfo: { sceneFile: '/gfs/a.blend', threads: 4, arguments: ['-o', '/gfs/out/'] },
        environment: { OUT: '/gfs/x' },
        outputDirectories: ['/gfs/out'],
        outputFilenames: ['/gfs/out/f_####.png'],
      },
      london,
      'linux',
    );
    expect(mapped).toEqual({
      pluginInfo: {
        sceneFile: '/mnt/london/a.blend',
        threads: 4,
        arguments: ['-o', '/mnt/london/out/'],
      },
      environment: { OUT: '/mnt/london/x' },
      outputDirectories: ['/mnt/london/out'],
      outputFilenames: ['/mnt/london/out/f_####.png'],
    });
  });
});
