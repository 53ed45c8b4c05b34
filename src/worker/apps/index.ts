import { DroverError } from '../../core/errors.js';
import { blenderApp } from './blender/index.js';
import { builtinRenderApp } from './builtin-render/index.js';
import { commandLineApp } from './command-line/index.js';
import { katanaApp } from './katana/index.js';
import { makeDirectoriesApp } from './make-directories/index.js';
import { reviewApp } from './review/index.js';
import type { AppPlugin } from './types.js';

/** The built-in application plugins every worker runs, by the name jobs use in `plugin`. */
export const appPlugins: ReadonlyMap<string, AppPlugin> = new Map(
  [commandLineApp, builtinRenderApp, blenderApp, makeDirectoriesApp, katanaApp, reviewApp].map(
    (app) => [app.name, app],
  ),
);

/** The application plugins one worker runs: the built-in ones and those it loaded. */
export interface AppRegistry {
  /** Names of the plugins loaded besides the built-in ones (what the worker advertises). */
  readonly extra: readonly string[];
  /** The plugin a task names; throws `invalid_input` naming it (and the known ones). */
  find(name: string): AppPlugin;
}

/** A registry of the built-in plugins and `extra` (loaded from an apps folder). */
export function appRegistry(extra: readonly AppPlugin[] = []): AppRegistry {
  const all = new Map(appPlugins);
  for (const app of extra) {
    if (all.has(app.name)) {
      throw new DroverError('invalid_input', `plugin ${app.name} is given twice`, 'apps-dir');
    }
    all.set(app.name, app);
  }
  return {
    extra: extra.map((app) => app.name),
    find(name: string): AppPlugin {
      const app = all.get(name);
      if (!app) {
        throw new DroverError(
          'invalid_input',
          `plugin: unknown application plugin "${name}" (this worker runs ${[...all.keys()].join(', ')})`,
          'plugin',
        );
      }
      return app;
    },
  };
}

const builtins = appRegistry();

/** A built-in plugin by name; throws `invalid_input` naming it (and the known ones) if unknown. */
export function findApp(name: string): AppPlugin {
  return builtins.find(name);
}
