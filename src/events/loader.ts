import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { invalid } from '../core/errors.js';
import { absolutePathProblem } from '../core/paths.js';
import { pluginStates } from '../core/plugin-config.js';
import { text } from '../core/text.js';
import type { EventPlugin } from './plugin.js';

const entry = z.discriminatedUnion('type', [
  z
    .object({
      type: z.enum(['string', 'multiline', 'password', 'path']),
      key: text(),
      label: text(),
      category: text().optional(),
      description: text().optional(),
      default: text(),
      maxLength: z.number().int().positive().optional(),
    })
    .superRefine((e, ctx) => {
      // A path setting's default is checked as a saved value would be (`applyConfig`).
      const problem =
        e.type === 'path' && e.default !== '' ? absolutePathProblem(e.default) : undefined;
      if (problem) ctx.addIssue({ code: 'custom', message: problem, path: ['default'] });
    }),
  z.object({
    type: z.literal('integer'),
    key: text(),
    label: text(),
    category: text().optional(),
    description: text().optional(),
    default: z.number().int(),
    min: z.number().int(),
    max: z.number().int(),
  }),
  z.object({
    type: z.literal('boolean'),
    key: text(),
    label: text(),
    category: text().optional(),
    description: text().optional(),
    default: z.boolean(),
  }),
  z.object({
    type: z.literal('enum'),
    key: text(),
    label: text(),
    category: text().optional(),
    description: text().optional(),
    default: text(),
    items: z.array(text()).min(1),
  }),
]);

const handlerNames = [
  'onJobSubmitted',
  'onJobStarted',
  'onJobFinished',
  'onJobRequeued',
  'onJobFailed',
  'onJobSuspended',
  'onJobResumed',
  'onJobPended',
  'onJobReleased',
  'onJobDeleted',
  'onJobArchived',
  'onJobError',
  'onHouseCleaning',
  'onWorkerStarted',
  'onWorkerStopped',
  'onWorkerIdle',
  'onWorkerStalled',
  'onWorkerRendering',
  'onWorkerStartingJob',
] as const;

/** The shape a third-party plugin module's default export must have. */
const pluginShape = z.object({
  name: text().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be lower-case letters, digits and dashes'),
  description: text().max(1000).default(''),
  defaultState: z.enum(pluginStates).optional(),
  config: z.array(entry).max(200).default([]),
  handlers: z.record(text(), z.unknown()).superRefine((h, ctx) => {
    for (const [k, v] of Object.entries(h)) {
      if (!(handlerNames as readonly string[]).includes(k)) {
        ctx.addIssue({
          code: 'custom',
          message: `unknown handler ${k} (known: ${handlerNames.join(', ')})`,
          path: [k],
        });
      } else if (typeof v !== 'function') {
        ctx.addIssue({ code: 'custom', message: `handler ${k} is not a function`, path: [k] });
      }
    }
  }),
});

/**
 * Loads third-party event plugins from a folder: every `*.js`/`*.mjs` file, and every
 * sub-folder with an `index.js`, whose default export is an event plugin. Each is
 * shape-checked; a bad one stops the manager with a message naming the file and the fault.
 */
export async function loadPlugins(dir: string): Promise<EventPlugin[]> {
  const root = resolve(dir);
  let names: string[];
  try {
    names = readdirSync(root).sort();
  } catch (err) {
    throw invalid('--plugins-dir', `cannot read ${root}: ${(err as Error).message}`);
  }
  const plugins: EventPlugin[] = [];
  for (const name of names) {
    const path = join(root, name);
    const file = statSync(path).isDirectory() ? join(path, 'index.js') : path;
    if (!/\.(m?js)$/.test(file) || (file !== path && !safeExists(file))) continue;
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
    } catch (err) {
      throw invalid('--plugins-dir', `cannot load event plugin ${file}: ${(err as Error).message}`);
    }
    const parsed = pluginShape.safeParse(mod.default);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw invalid(
        '--plugins-dir',
        `${file} is not an event plugin: ${issue.path.join('.') || 'default export'}: ${issue.message}`,
      );
    }
    plugins.push(mod.default as EventPlugin);
  }
  return plugins;
}

function safeExists(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
