import { DroverError } from '../../core/errors.js';
import { mapPath, rulesFor } from '../../core/path-mapping.js';
import type { Farm } from '../farm.js';
import type { Handlers } from '../http/serve.js';

type PluginHandlers = Pick<
  Handlers,
  | 'listPlugins'
  | 'getPlugin'
  | 'configurePlugin'
  | 'listPathMappings'
  | 'addPathMapping'
  | 'removePathMapping'
  | 'mapPath'
>;

/** Event plugins and path mapping. */
export function pluginHandlers(farm: Farm): PluginHandlers {
  const host = () => {
    if (!farm.plugins) throw new DroverError('unavailable', 'this manager runs no event plugins');
    return farm.plugins;
  };
  return {
    listPlugins: () => ({ plugins: farm.plugins?.list() ?? [] }),

    getPlugin: ({ params: { name } }) => ({ plugin: host().show(name) }),

    configurePlugin: async ({ params: { name }, body }) => ({
      plugin: await host().configure(name, body),
    }),

    listPathMappings: async () => ({ rules: await farm.store.listPathMappings() }),

    addPathMapping: async ({ body }) => {
      const rule = await farm.store.addPathMapping(body);
      farm.paths.invalidate();
      return { rule };
    },

    removePathMapping: async ({ params: { id } }) => {
      await farm.store.removePathMapping(id);
      farm.paths.invalidate();
      return { ok: true };
    },

    mapPath: async ({ body }) => {
      const rules = rulesFor(await farm.store.listPathMappings(), body);
      return { path: mapPath(body.path, rules, body.os) };
    },
  };
}
