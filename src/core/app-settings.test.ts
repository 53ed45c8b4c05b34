import { describe, expect, it } from 'vitest';
import {
  appSettingsSchemas,
  blenderSettingsSchema,
  builtinRenderSettingsSchema,
  commandLineSettingsSchema,
  knownApps,
  parseAppSettings,
  splitArguments,
  validatePluginInfo,
} from './app-settings.js';
import { DroverError } from './errors.js';

function errorOf(fn: () => unknown): DroverError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DroverError) return err;
    throw err;
  }
  throw new Error('no error thrown');
}

describe('splitArguments', () => {
  it.each<[string, string[] | undefined]>([
    ['', []],
    ['  ', []],
    ['-a b  c', ['-a', 'b', 'c']],
    ['-o "my file.png" -v', ['-o', 'my file.png', '-v']],
    ['--name="a b"', ['--name=a b']],
    ['"" x', ['', 'x']],
    ['\t-x\n1 ', ['-x', '1']],
    ['"unclosed', undefined],
  ])('splits %j', (line, args) => {
    expect(splitArguments(line)).toEqual(args);
  });
});

describe('CommandLine settings', () => {
  it('applies defaults', () => {
    expect(parseAppSettings(commandLineSettingsSchema, { executable: 'echo' })).toEqual({
      executable: 'echo',
      arguments: [],
      perFrame: false,
    });
  });

  it('takes arguments as a list or as one string split on whitespace', () => {
    const list = parseAppSettings(commandLineSettingsSchema, {
      executable: 'ffmpeg',
      arguments: ['-i', 'a b.mov'],
    });
    expect(list.arguments).toEqual(['-i', 'a b.mov']);
    const line = parseAppSettings(commandLineSettingsSchema, {
      executable: 'ffmpeg',
      arguments: '-i "a b.mov" -y',
    });
    expect(line.arguments).toEqual(['-i', 'a b.mov', '-y']);
  });

  it('reads Deadline-style text values for booleans', () => {
    const s = parseAppSettings(commandLineSettingsSchema, { executable: 'x', perFrame: 'True' });
    expect(s.perFrame).toBe(true);
  });

  it.each<[Record<string, unknown>, string]>([
    [{}, 'pluginInfo.executable: is required'],
    [{ executable: '  ' }, 'pluginInfo.executable: must not be empty'],
    [{ executable: 3 }, 'pluginInfo.executable: must be a string'],
    [{ executable: 'x', arguments: 3 }, 'pluginInfo.arguments: must be a list of strings'],
    [{ executable: 'x', arguments: ['a', 1] }, 'pluginInfo.arguments.1: must be a string'],
    [{ executable: 'x', arguments: 'a "b' }, 'pluginInfo.arguments: has a double quote'],
    [{ executable: 'x', workingDirectory: 'tmp' }, 'pluginInfo.workingDirectory: "tmp" is not'],
    [{ executable: 'x', perFrame: 'yes' }, 'pluginInfo.perFrame: must be true or false'],
    [{ executable: 'x', exe: 'y' }, 'pluginInfo.exe: is not a setting of this plugin'],
  ])('refuses %j with a clear message', (info, message) => {
    const err = errorOf(() => parseAppSettings(commandLineSettingsSchema, info));
    expect(err.code).toBe('invalid_input');
    expect(err.message.startsWith(message)).toBe(true);
    expect(err.field).toBe(message.split(':')[0]);
  });
});

describe('CommandLine executable', () => {
  it.each([
    'echo',
    'ffmpeg',
    'blender-4.2',
    '/bin/echo',
    '/opt/Blender 4/blender',
    'C:\\bin\\x.exe',
    '\\\\host\\share\\x.exe',
  ])('accepts %j (absolute, or a bare name looked up on PATH)', (executable) => {
    expect(parseAppSettings(commandLineSettingsSchema, { executable }).executable).toBe(executable);
  });

  it.each(['../../bin/sh', 'bin/sh', './render.sh', 'tools\\x.exe', '.', '..', '/usr/../bin/sh'])(
    'refuses %j, naming pluginInfo.executable',
    (executable) => {
      const err = errorOf(() => validatePluginInfo('CommandLine', { executable }));
      expect(err.code).toBe('invalid_input');
      expect(err.field).toBe('pluginInfo.executable');
    },
  );

  it('says how to fix a relative path', () => {
    const err = errorOf(() => validatePluginInfo('CommandLine', { executable: 'bin/sh' }));
    expect(err.message).toMatch(/relative path.*absolute path.*PATH/);
  });

  it('applies to Blender executable too', () => {
    const err = errorOf(() =>
      validatePluginInfo('Blender', { sceneFile: '/a.blend', executable: '../blender' }),
    );
    expect(err.field).toBe('pluginInfo.executable');
  });

  it.each<[Record<string, unknown>, string]>([
    [{ executable: 'x', arguments: ['a', 'b\u0000c'] }, 'pluginInfo.arguments.1'],
    [{ executable: 'x', arguments: 'a b\u0000c' }, 'pluginInfo.arguments.1'],
    [{ executable: 'x\u0000y' }, 'pluginInfo.executable'],
  ])('refuses NUL in argv: %j', (info, field) => {
    const err = errorOf(() => validatePluginInfo('CommandLine', info));
    expect(err.field).toBe(field);
    expect(err.message).toMatch(/NUL/);
  });

  it('refuses NUL in Blender extraArguments', () => {
    const err = errorOf(() =>
      validatePluginInfo('Blender', { sceneFile: '/a.blend', extraArguments: ['--x', '\u0000'] }),
    );
    expect(err.field).toBe('pluginInfo.extraArguments.1');
  });
});

describe('builtin-render settings', () => {
  it('applies defaults', () => {
    expect(parseAppSettings(builtinRenderSettingsSchema, {})).toEqual({
      width: 320,
      height: 180,
      samples: 1,
      scene: 'spheres',
      outputPattern: 'frame_####.png',
      frameDelayMs: 0,
    });
  });

  it('accepts numbers written as text', () => {
    const s = parseAppSettings(builtinRenderSettingsSchema, { width: '640', samples: 4 });
    expect(s.width).toBe(640);
    expect(s.samples).toBe(4);
  });

  it.each<[Record<string, unknown>, string]>([
    [{ width: 8 }, 'pluginInfo.width: must be at least 16'],
    [{ height: 5000 }, 'pluginInfo.height: must be at most 4096'],
    [{ samples: 1.5 }, 'pluginInfo.samples: must be a whole number from 1 to 64'],
    [{ samples: 'many' }, 'pluginInfo.samples: must be a whole number from 1 to 64'],
    [{ scene: 'teapot' }, 'pluginInfo.scene: must be one of spheres, mandelbrot'],
    [{ outputPattern: '/abs/f_#.png' }, 'pluginInfo.outputPattern: must be relative'],
    [{ outputPattern: '../f_#.png' }, 'pluginInfo.outputPattern: must not contain a ".."'],
    [{ outputPattern: 'frame.png' }, 'pluginInfo.outputPattern: must contain # padding'],
    [{ outputPattern: 'f_####.exr' }, 'pluginInfo.outputPattern: must end with .png'],
    [{ frameDelayMs: -1 }, 'pluginInfo.frameDelayMs: must be at least 0'],
  ])('refuses %j with a clear message', (info, message) => {
    const err = errorOf(() => parseAppSettings(builtinRenderSettingsSchema, info));
    expect(err.message.startsWith(message)).toBe(true);
  });
});

describe('Blender settings', () => {
  it('applies defaults', () => {
    expect(parseAppSettings(blenderSettingsSchema, { sceneFile: '/shots/a.blend' })).toEqual({
      sceneFile: '/shots/a.blend',
      executable: 'blender',
      extraArguments: [],
    });
  });

  it.each<[Record<string, unknown>, string]>([
    [{}, 'pluginInfo.sceneFile: is required'],
    [{ sceneFile: 'a.blend' }, 'pluginInfo.sceneFile: "a.blend" is not an absolute path'],
    [{ sceneFile: '/a.blend', format: 'GIF' }, 'pluginInfo.format: must be one of PNG'],
    [{ sceneFile: '/a.blend', threads: -1 }, 'pluginInfo.threads: must be at least 0'],
    [{ sceneFile: '/a.blend', engine: 'CYCLES; rm' }, 'pluginInfo.engine: must be an engine'],
  ])('refuses %j with a clear message', (info, message) => {
    const err = errorOf(() => parseAppSettings(blenderSettingsSchema, info));
    expect(err.message.startsWith(message)).toBe(true);
  });
});

describe('validatePluginInfo', () => {
  it('knows the built-in plugins', () => {
    expect(knownApps).toEqual(expect.arrayContaining(['CommandLine', 'builtin-render', 'Blender']));
    expect(Object.keys(appSettingsSchemas)).toEqual(knownApps);
  });

  it('accepts any other plugin name with its settings as sent: workers that offer it run it', () => {
    for (const name of ['MayaBatch', 'Nuke', '3dsmax', 'OpenPypeTileAssembler', 'toString']) {
      expect(validatePluginInfo(name, { SceneFile: '/s.ma', Version: 2024 })).toEqual({
        SceneFile: '/s.ma',
        Version: 2024,
      });
    }
    expect(validatePluginInfo('Ayon', undefined)).toEqual({});
  });

  it('refuses a name that is no plugin name, and a built-in name in the wrong case', () => {
    for (const name of ['Maya 2024', '__proto__', 'a/b', '-x', 'x'.repeat(65)]) {
      const err = errorOf(() => validatePluginInfo(name, {}));
      expect(err.field).toBe('plugin');
      expect(err.message).toContain(`"${name}"`);
      expect(err.message).toContain('CommandLine');
    }
    const typo = errorOf(() => validatePluginInfo('commandline', {}));
    expect(typo.field).toBe('plugin');
    expect(typo.message).toContain('did you mean "CommandLine"');
  });

  it('returns the settings with defaults applied', () => {
    expect(validatePluginInfo('builtin-render', { width: 64 })).toMatchObject({
      width: 64,
      height: 180,
    });
  });
});
