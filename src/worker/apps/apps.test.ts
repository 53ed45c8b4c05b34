import { describe, expect, it } from 'vitest';
import { knownApps } from '../../core/app-settings.js';
import { appPlugins, appRegistry, findApp } from './index.js';

describe('application plugin registry', () => {
  it('has a worker plugin for every plugin the manager accepts', () => {
    for (const name of knownApps) expect(appPlugins.get(name)?.name).toBe(name);
  });

  it('finds a plugin by name', () => {
    expect(findApp('CommandLine').name).toBe('CommandLine');
    expect(findApp('builtin-render').name).toBe('builtin-render');
    expect(findApp('Blender').name).toBe('Blender');
  });

  it('refuses an unknown plugin, naming it', () => {
    expect(() => findApp('Houdini')).toThrow(
      expect.objectContaining({
        code: 'invalid_input',
        field: 'plugin',
        message: expect.stringContaining('"Houdini"'),
      }),
    );
  });
});

describe('a worker registry with loaded plugins', () => {
  const maya = { ...findApp('CommandLine'), name: 'MayaBatch' };

  it('finds the built-in and the loaded plugins, and advertises the loaded ones', () => {
    const registry = appRegistry([maya]);
    expect(registry.extra).toEqual(['MayaBatch']);
    expect(registry.find('MayaBatch')).toBe(maya);
    expect(registry.find('Blender').name).toBe('Blender');
    expect(() => registry.find('Nuke')).toThrow(/"Nuke".*MayaBatch/);
  });

  it('refuses a loaded plugin named like a built-in one or given twice', () => {
    expect(() => appRegistry([{ ...maya, name: 'Blender' }])).toThrow(/Blender is given twice/);
    expect(() => appRegistry([maya, maya])).toThrow(/MayaBatch is given twice/);
  });
});
