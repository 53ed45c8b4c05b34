import { describe, expect, it } from 'vitest';
import { validatePluginInfo } from '../../../core/app-settings.js';
import { DroverError } from '../../../core/errors.js';
import { mapTaskPaths } from '../../../core/path-mapping.js';
import { taskFixture } from '../task-fixture.js';
import { katanaApp, parseRenderbootLine } from './index.js';

const rule = {
  id: 1,
  prefix: '/gfs/',
  replacement: '/mnt/gfs/',
  region: '',
  os: '',
  caseSensitive: true,
};

describe('Katana plugin', () => {
  it('runs the commands in order, path-mapped, with the Catalog Server and Katana root', () => {
    const pluginInfo = validatePluginInfo('Katana', {
      command0: ['/opt/katana/bin/renderboot', '--file=/gfs/tmp/ctx/optree.xml', '{catalogServer}'],
      command1: '/usr/bin/touch "/gfs/tmp/ctx/done file"',
      katanaRoot: '/opt/katana',
      catalogServer: 'ws12:9001',
      renderType: 'Preview',
    }) as Record<string, string | string[]>;
    const task = mapTaskPaths(taskFixture({ plugin: 'Katana', pluginInfo }), [rule], 'linux');
    const specs = katanaApp.processes(task);
    expect(specs.map((s) => s.argv)).toEqual([
      ['/opt/katana/bin/renderboot', '--file=/mnt/gfs/tmp/ctx/optree.xml', 'ws12:9001'],
      ['/usr/bin/touch', '/mnt/gfs/tmp/ctx/done file'],
    ]);
    expect(specs[0]?.env).toEqual({
      KATANA_ROOT: '/opt/katana',
      KATANA_CATALOG_SERVER: 'ws12:9001',
    });
  });

  it.each<[Record<string, unknown>, string, RegExp]>([
    [{}, 'pluginInfo.command0', /required/],
    [{ command0: ['a'], command2: ['b'] }, 'pluginInfo.command1', /without gaps/],
    [{ command0: [] }, 'pluginInfo.command0', /empty/],
    [{ command0: ['bin/renderboot'] }, 'pluginInfo.command0', /absolute path/],
    [{ command0: ['a'], catalogServer: 'no port' }, 'pluginInfo.catalogServer', /host:port/],
    [{ command0: ['a'], command64: ['b'] }, 'pluginInfo.command64', /not a setting/],
  ])('refuses %j at submission', (info, field, message) => {
    try {
      validatePluginInfo('Katana', info);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(DroverError);
      expect((error as DroverError).field).toBe(field);
      expect((error as DroverError).message).toMatch(message);
    }
  });

  it.each<[string, number | undefined]>([
    ['Render progress: 45%', 45],
    ['[PROGRESS] 12.5%', 12.5],
    ['R00012 {INFO} 80% complete', 80],
    ['PROGRESS: 100', 100],
    ['loading scene graph', undefined],
  ])('reads progress from %j', (line, progress) => {
    expect(parseRenderbootLine(line)?.progress).toBe(progress);
  });
});
