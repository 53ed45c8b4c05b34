import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DroverError } from '../../core/errors.js';
import { mappingOses, mapPath, rulesFor, type PathMapping } from '../../core/path-mapping.js';
import { pluginStates, type PluginView } from '../../core/plugin-config.js';
import { parseInput } from '../../core/validate.js';
import type { Farm } from '../farm.js';

const nameParams = z.object({ name: z.string().min(1).max(128) });
const configureBody = z
  .object({
    state: z.enum(pluginStates).optional(),
    config: z
      .record(z.string().min(1).max(128), z.union([z.string().max(65536), z.number(), z.boolean()]))
      .refine((c) => Object.keys(c).length <= 256, 'at most 256 settings')
      .optional(),
  })
  .strict()
  .refine((b) => b.state !== undefined || b.config !== undefined, 'give a state or config');

const prefix = z
  .string()
  .min(1)
  .max(1024)
  .refine((p) => !p.includes('\0'), 'must not contain NUL');
const ruleBody = z
  .object({
    prefix,
    replacement: prefix,
    region: z.string().max(128).default(''),
    os: z.union([z.enum(mappingOses), z.literal('')]).default(''),
    caseSensitive: z.boolean().default(true),
  })
  .strict();
const idParams = z.object({ id: z.coerce.number().int().min(1) });
const mapBody = z
  .object({
    path: prefix,
    region: z.string().max(128),
    os: z.enum(mappingOses).default('linux'),
  })
  .strict();

export function pluginRoutes(app: FastifyInstance, farm: Farm): void {
  const host = () => {
    if (!farm.plugins) throw new DroverError('unavailable', 'this manager runs no event plugins');
    return farm.plugins;
  };

  app.get('/plugins', (): { plugins: PluginView[] } => ({ plugins: farm.plugins?.list() ?? [] }));

  app.get('/plugins/:name', (req): { plugin: PluginView } => {
    const { name } = parseInput(nameParams, req.params, 'params');
    return { plugin: host().show(name) };
  });

  app.patch('/plugins/:name', async (req): Promise<{ plugin: PluginView }> => {
    const { name } = parseInput(nameParams, req.params, 'params');
    const body = parseInput(configureBody, req.body);
    return { plugin: await host().configure(name, body) };
  });

  app.get('/paths', async (): Promise<{ rules: PathMapping[] }> => ({
    rules: await farm.store.listPathMappings(),
  }));

  app.post('/paths', async (req, reply): Promise<{ rule: PathMapping }> => {
    const rule = await farm.store.addPathMapping(parseInput(ruleBody, req.body));
    farm.paths.invalidate();
    reply.status(201);
    return { rule };
  });

  app.delete('/paths/:id', async (req): Promise<{ ok: true }> => {
    const { id } = parseInput(idParams, req.params, 'params');
    await farm.store.removePathMapping(id);
    farm.paths.invalidate();
    return { ok: true };
  });

  app.post('/paths/map', async (req): Promise<{ path: string }> => {
    const q = parseInput(mapBody, req.body);
    const rules = rulesFor(await farm.store.listPathMappings(), q);
    return { path: mapPath(q.path, rules, q.os) };
  });
}
