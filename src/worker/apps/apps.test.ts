import { describe, expect, it } from 'vitest';
import { knownApps } from '../../core/app-settings.js';
import { appPlugins, findApp } from './index.js';

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
