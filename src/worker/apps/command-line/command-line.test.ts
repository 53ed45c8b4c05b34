import { describe, expect, it } from 'vitest';
import { DroverError } from '../../../core/errors.js';
import type { TaskAssignment } from '../../../core/types.js';
import { taskFixture } from '../task-fixture.js';
import { commandLineApp, substituteTokens } from './index.js';

function task(frames: number[], pluginInfo: TaskAssignment['pluginInfo']): TaskAssignment {
  return taskFixture({ frames, plugin: 'CommandLine', pluginInfo });
}

describe('substituteTokens', () => {
  const ctx = { frames: [7, 8, 9], start: 7, end: 9 };
  it.each<[string, string]>([
    ['{start}', '7'],
    ['{end}', '9'],
    ['{frames}', '7,8,9'],
    ['-o out_{start}-{end}.exr', '-o out_7-9.exr'],
    ['<STARTFRAME>', '7'],
    ['<ENDFRAME>', '9'],
    ['f_<STARTFRAME%4>.png', 'f_0007.png'],
    ['<ENDFRAME%3>', '009'],
    ['<QUOTE>a b<QUOTE>', '"a b"'],
    ['{unknown} <OTHER>', '{unknown} <OTHER>'],
  ])('%j → %j', (arg, out) => {
    expect(substituteTokens(arg, ctx)).toBe(out);
  });

  it('does not substitute inside a substituted value', () => {
    expect(substituteTokens('{frames}', { frames: [1], start: 1, end: 1 })).toBe('1');
    expect(substituteTokens('<QUOTE>{start}', ctx)).toBe('"7');
  });

  it('pads negative frames after the sign', () => {
    expect(substituteTokens('<STARTFRAME%4>', { frames: [-5], start: -5, end: -5 })).toBe('-0005');
  });
});

describe('CommandLine plugin', () => {
  it('runs one process per chunk with chunk tokens', () => {
    const specs = commandLineApp.processes(
      task([10, 11, 12], {
        executable: '/usr/bin/render',
        arguments: ['-s', '<STARTFRAME>', '-e', '<ENDFRAME>', '--frames={frames}'],
      }),
    );
    expect(specs).toEqual([
      { argv: ['/usr/bin/render', '-s', '10', '-e', '12', '--frames=10,11,12'] },
    ]);
  });

  it('runs one process per frame, in order, when an argument uses {frame}', () => {
    const specs = commandLineApp.processes(
      task([3, 1, 2], { executable: 'convert', arguments: 'in_{frame}.exr "out {frame}.png"' }),
    );
    expect(specs.map((s) => s.argv)).toEqual([
      ['convert', 'in_3.exr', 'out 3.png'],
      ['convert', 'in_1.exr', 'out 1.png'],
      ['convert', 'in_2.exr', 'out 2.png'],
    ]);
  });

  it('runs one process per frame when perFrame is set, with start = end = that frame', () => {
    const specs = commandLineApp.processes(
      task([5, 6], {
        executable: 'tool',
        arguments: ['<STARTFRAME%3>', '{end}', '{frames}'],
        perFrame: true,
      }),
    );
    expect(specs.map((s) => s.argv)).toEqual([
      ['tool', '005', '5', '5'],
      ['tool', '006', '6', '6'],
    ]);
  });

  it('never builds a shell string: arguments with spaces and quotes stay single tokens', () => {
    const [spec] = commandLineApp.processes(
      task([1], { executable: 'echo', arguments: ['a; rm -rf /', '$(id)', '<QUOTE>'] }),
    );
    expect(spec!.argv).toEqual(['echo', 'a; rm -rf /', '$(id)', '"']);
  });

  it('sets the working directory', () => {
    const [spec] = commandLineApp.processes(
      task([1], { executable: 'ls', workingDirectory: '/tmp/work/' }),
    );
    expect(spec!.cwd).toBe('/tmp/work');
  });

  it('refuses bad settings naming the setting', () => {
    expect(() => commandLineApp.processes(task([1], { arguments: ['x'] }))).toThrow(
      expect.objectContaining({ code: 'invalid_input', field: 'pluginInfo.executable' }),
    );
    expect(() => commandLineApp.processes(task([1], { executable: 'x', perFrame: 'no' }))).toThrow(
      DroverError,
    );
  });

  it('reads progress lines and nothing else', () => {
    const parser = commandLineApp.createParser(task([1], { executable: 'x' }));
    expect(parser.line('Progress: 45%', 'stdout')).toEqual({ progress: 45 });
    expect(parser.line('PROGRESS: 45', 'stdout')).toEqual({ progress: 45 });
    expect(parser.line('  progress: 12.5 %', 'stderr')).toEqual({ progress: 12.5 });
    expect(parser.line('Progress: 150%', 'stdout')).toEqual({ progress: 100 });
    expect(parser.line('Error: something', 'stderr')).toBeUndefined();
    expect(parser.line('Progress: almost', 'stdout')).toBeUndefined();
    expect(parser.line('hello', 'stdout')).toBeUndefined();
  });
});
