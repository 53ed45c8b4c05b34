import { DroverError } from '../../core/errors.js';
import { blenderApp } from './blender/index.js';
import { builtinRenderApp } from './builtin-render/index.js';
import { commandLineApp } from './command-line/index.js';
import { katanaApp } from './katana/index.js';
import { makeDirectoriesApp } from './make-directories/index.js';
import type { AppPlugin } from './types.js';

/** The application plugins this worker can run, by the name jobs use in `plugin`. */
export const appPlugins: ReadonlyMap<string, AppPlugin> = new Map(
  [commandLineApp, builtinRenderApp, blenderApp, makeDirectoriesApp, katanaApp].map((app) => [
    app.name,
    app,
  ]),
);

/** The plugin a job names; throws `invalid_input` naming it (and the known ones) if unknown. */
export function findApp(name: string): AppPlugin {
  const app = appPlugins.get(name);
  if (!app) {
    throw new DroverError(
      'invalid_input',
      `plugin: unknown application plugin "${name}" (this worker runs ${[...appPlugins.keys()].join(', ')})`,
      'plugin',
    );
  }
  return app;
}
