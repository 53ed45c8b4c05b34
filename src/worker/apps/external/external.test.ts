import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DroverError } from '../../../core/errors.js';
import { taskFixture } from '../task-fixture.js';
import { loadExternalApps, MAX_APP_FILE_BYTES, MAX_APP_FILES, parseExternalApp } from './index.js';

const maya = {
  name: 'MayaBatch',
  executable: '/usr/autodesk/maya/bin/Render',
  arguments: [
    '-r',
    'file',
    '-s',
    '{StartFrame}',
    '-e',
    '{EndFrame}',
    '-proj',
    '{ProjectPath}',
    '{SceneFile}',
  ],
  defaults: { ProjectPath: '/projects/default' },
};

function errorOf(fn: () => unknown): DroverError {
  try {
    fn();
  } catch (error) {
    if (error instanceof DroverError) return error;
    throw error;
  }
  throw new Error('expected a DroverError');
}

async function rejectionOf(p: Promise<unknown>): Promise<DroverError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof DroverError) return error;
    throw error;
  }
  throw new Error('expected a DroverError');
}

describe('an application plugin file', () => {
  it('turns the argument template into the task command, tokens from frames and plugin info', () => {
    const app = parseExternalApp('MayaBatch.json', JSON.stringify(maya));
    expect(app.name).toBe('MayaBatch');
    const specs = app.processes(
      taskFixture({
        plugin: 'MayaBatch',
        frames: [10, 11, 12],
        pluginInfo: { SceneFile: '/show/a b.ma' },
      }),
    );
    expect(specs).toEqual([
      {
        argv: [
          '/usr/autodesk/maya/bin/Render',
          '-r',
          'file',
          '-s',
          '10',
          '-e',
          '12',
          '-proj',
          '/projects/default',
          '/show/a b.ma',
        ],
      },
    ]);
  });

  it('prefers the job’s plugin info to the defaults and reads numbers and booleans as text', () => {
    const app = parseExternalApp('MayaBatch.json', JSON.stringify(maya));
    const [spec] = app.processes(
      taskFixture({ frames: [1], pluginInfo: { SceneFile: '/s.ma', ProjectPath: 2024 } }),
    );
    expect(spec?.argv.slice(-2)).toEqual(['2024', '/s.ma']);
  });

  it('runs one process per frame with {Frame}, and knows CommandLine’s tokens', () => {
    const app = parseExternalApp(
      'Nuke.json',
      JSON.stringify({
        executable: 'nuke',
        arguments: ['-F', '{Frame}', '-x', '{Script}', 'f_<STARTFRAME%4>', '{Frames}'],
        environment: { NUKE_PATH: '/opt/nuke' },
      }),
    );
    const specs = app.processes(taskFixture({ frames: [3, 4], pluginInfo: { Script: '/a.nk' } }));
    expect(specs.map((s) => s.argv)).toEqual([
      ['nuke', '-F', '3', '-x', '/a.nk', 'f_0003', '3'],
      ['nuke', '-F', '4', '-x', '/a.nk', 'f_0004', '4'],
    ]);
    expect(specs[0]?.env).toEqual({ NUKE_PATH: '/opt/nuke' });
  });

  it('does not read a substituted value as a token again', () => {
    const app = parseExternalApp('A.json', JSON.stringify({ executable: 'a', arguments: ['{X}'] }));
    const [spec] = app.processes(taskFixture({ pluginInfo: { X: '{StartFrame}<QUOTE>' } }));
    expect(spec?.argv).toEqual(['a', '{StartFrame}<QUOTE>']);
  });

  it('fails the task naming the plugin info key a token needs', () => {
    const app = parseExternalApp('MayaBatch.json', JSON.stringify(maya));
    const missing = errorOf(() => app.processes(taskFixture({ pluginInfo: {} })));
    expect(missing.code).toBe('invalid_input');
    expect(missing.field).toBe('pluginInfo.SceneFile');
    expect(missing.message).toContain('MayaBatch.json');
    const list = errorOf(() =>
      app.processes(taskFixture({ pluginInfo: { SceneFile: ['/a', '/b'] } })),
    );
    expect(list.field).toBe('pluginInfo.SceneFile');
  });

  it.each<[string, string, string]>([
    ['MayaBatch.json', '{', 'MayaBatch.json: is not JSON'],
    ['MayaBatch.json', '[]', 'MayaBatch.json: (file): '],
    ['MayaBatch.json', '{"arguments": []}', 'MayaBatch.json: executable: is required'],
    [
      'MayaBatch.json',
      '{"executable": "bin/Render"}',
      'MayaBatch.json: executable: "bin/Render" is a relative path',
    ],
    [
      'MayaBatch.json',
      '{"executable": "r", "arguments": ["-x", 5]}',
      'MayaBatch.json: arguments.1: must be a string',
    ],
    [
      'MayaBatch.json',
      '{"executable": "r", "shell": true}',
      'MayaBatch.json: shell: is not a field',
    ],
    ['MayaBatch.json', '{"executable": "r", "name": "Nuke"}', 'MayaBatch.json: name: is "Nuke"'],
    [
      'MayaBatch.json',
      '{"executable": "r", "environment": {"A B": "x"}}',
      'MayaBatch.json: environment.A B: must be a variable name',
    ],
    [
      'MayaBatch.json',
      '{"executable": "r", "workingDirectory": "rel"}',
      'MayaBatch.json: workingDirectory: ',
    ],
    ['Blender.json', '{"executable": "r"}', 'Blender.json: name: is a built-in'],
    ['bad name.json', '{"executable": "r"}', 'bad name.json: the file name must be'],
  ])('%s holding %s is refused: %s', (file, source, message) => {
    const err = errorOf(() => parseExternalApp(file, source));
    expect(err.code).toBe('invalid_input');
    expect(err.field).toBe('apps-dir');
    expect(err.message).toContain(`apps folder: ${message}`);
  });
});

describe('loading an apps folder', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'drover-apps-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('loads every .json file in name order and ignores other files', async () => {
    writeFileSync(join(dir, 'Nuke.json'), JSON.stringify({ executable: 'nuke' }));
    writeFileSync(join(dir, 'MayaBatch.json'), JSON.stringify(maya));
    writeFileSync(join(dir, 'README.txt'), 'not a plugin');
    mkdirSync(join(dir, 'old.json'));
    expect((await loadExternalApps(dir)).map((a) => a.name)).toEqual(['MayaBatch', 'Nuke']);
  });

  it('is an error naming the file when one file is bad', async () => {
    writeFileSync(join(dir, 'MayaBatch.json'), JSON.stringify(maya));
    writeFileSync(join(dir, 'Nuke.json'), JSON.stringify({ executable: 'nuke', arguments: 'x' }));
    const err = await rejectionOf(loadExternalApps(dir));
    expect(err.message).toContain(join(dir, 'Nuke.json'));
    expect(err.message).toContain('arguments: must be a list of strings');
  });

  it('refuses a missing folder, a file too large, too many files and one name twice', async () => {
    expect((await rejectionOf(loadExternalApps(join(dir, 'none')))).message).toContain('ENOENT');

    writeFileSync(join(dir, 'Big.json'), ' '.repeat(MAX_APP_FILE_BYTES + 1));
    expect((await rejectionOf(loadExternalApps(dir))).message).toContain('Big.json: is larger');
    rmSync(join(dir, 'Big.json'));

    writeFileSync(join(dir, 'Maya.json'), JSON.stringify({ executable: 'a' }));
    writeFileSync(join(dir, 'maya.json'), JSON.stringify({ executable: 'b' }));
    expect((await rejectionOf(loadExternalApps(dir))).message).toMatch(/names the same plugin as/);
    rmSync(join(dir, 'maya.json'));

    for (let i = 0; i < MAX_APP_FILES; i++) writeFileSync(join(dir, `A${i}.json`), '{}');
    expect((await rejectionOf(loadExternalApps(dir))).message).toContain(
      `more than ${MAX_APP_FILES}`,
    );
  });
});
