import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { APP_NAME_PATTERN, executableSetting, isBuiltinApp } from '../../../core/app-settings.js';
import { DroverError, invalid } from '../../../core/errors.js';
import { absolutePathProblem } from '../../../core/paths.js';
import type { TaskAssignment } from '../../../core/types.js';
import { text } from '../../../core/text.js';
import { commandProcesses, createCommandParser } from '../command-line/index.js';
import type { AppPlugin, ProcessSpec } from '../types.js';

/**
 * Application plugins a worker loads from a folder (`drover worker --apps-dir DIR`): one
 * JSON file per plugin, `<Name>.json`, declaring the program to run and its argument
 * template. A job naming `Name` as its plugin runs only on workers that load such a file.
 *
 * ```json
 * { "executable": "/usr/autodesk/maya/bin/Render",
 *   "arguments": ["-r", "file", "-s", "{StartFrame}", "-e", "{EndFrame}", "{SceneFile}"],
 *   "defaults": { "ProjectPath": "/projects" } }
 * ```
 *
 * Tokens in `arguments`: `{StartFrame}`, `{EndFrame}` (the task's first and last frame),
 * `{Frames}` (`1,2,3`), `{Frame}` (one process per frame), CommandLine's own (`{start}`,
 * `<STARTFRAME%4>`, `<QUOTE>`, …), and `{Key}` for any key of the job's plugin info
 * (`{SceneFile}`), or of `defaults` when the job does not set it. A token neither gives is
 * an error naming `pluginInfo.Key`, so the task fails instead of running a wrong command.
 * The program runs like CommandLine's: an argv, never a shell; `Progress: 45%` lines are
 * progress and the exit code decides success.
 */

/** Most plugin files in one folder, and the largest file read. */
export const MAX_APP_FILES = 256;
export const MAX_APP_FILE_BYTES = 64 * 1024;

/** Frame tokens; they win over plugin info keys of the same name. */
const FRAME_TOKENS = new Set(['StartFrame', 'EndFrame', 'Frame', 'Frames']);

const appName = text()
  .regex(APP_NAME_PATTERN, 'must be letters, digits, "_", "." or "-" (at most 64)')
  .refine((n) => !isBuiltinApp(n), 'is a built-in application plugin of every worker');

const argument = text({ error: 'must be a string' }).max(4096, 'must be at most 4096 characters');

/** The contents of one `<Name>.json`. */
export const externalAppSchema = z.strictObject({
  /** Optional: the file name (without `.json`) is the plugin name; if given it must match. */
  name: appName.optional(),
  executable: executableSetting('is required (an absolute path or a program name on PATH)'),
  arguments: z
    .array(argument, { error: 'must be a list of strings' })
    .max(256, 'at most 256 arguments')
    .default([]),
  /** Values of `{Key}` tokens the job's plugin info leaves out. */
  defaults: z
    .record(text().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be a token name'), argument, {
      error: 'must be an object of strings',
    })
    .refine((d) => Object.keys(d).length <= 64, 'at most 64 defaults')
    .default({}),
  /** Added to the process environment (for a licence server, a renderer's root, …). */
  environment: z
    .record(text().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be a variable name'), argument, {
      error: 'must be an object of strings',
    })
    .refine((e) => Object.keys(e).length <= 64, 'at most 64 variables')
    .default({}),
  workingDirectory: text({ error: 'must be an absolute path' })
    .max(1024)
    .superRefine((p, ctx) => {
      const problem = absolutePathProblem(p);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  /** One process per frame of the task instead of one per task. */
  perFrame: z.boolean({ error: 'must be true or false' }).default(false),
});
export type ExternalAppDefinition = z.output<typeof externalAppSchema>;

/** A plugin setting as a token value; lists have no single text. */
function settingText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

/** The application plugin one definition describes. `file` names it in errors. */
export function externalApp(name: string, def: ExternalAppDefinition, file: string): AppPlugin {
  const template = [def.executable, ...def.arguments];
  const perFrame = def.perFrame || template.some((arg) => arg.includes('{Frame}'));
  return {
    name,
    processes(task: TaskAssignment): ProcessSpec[] {
      const info = task.pluginInfo as Record<string, unknown>;
      return commandProcesses(template, task.frames, {
        perFrame,
        ...(def.workingDirectory !== undefined ? { cwd: def.workingDirectory } : {}),
        ...(Object.keys(def.environment).length > 0 ? { env: def.environment } : {}),
        lookup: (key, ctx) => {
          if (FRAME_TOKENS.has(key)) {
            if (key === 'Frames') return ctx.frames.join(',');
            return String(key === 'EndFrame' ? ctx.end : ctx.start);
          }
          if (Object.hasOwn(info, key)) {
            const value = settingText(info[key]);
            if (value === undefined) {
              throw invalid(`pluginInfo.${key}`, `must be one value for {${key}} in ${file}`);
            }
            return value;
          }
          if (Object.hasOwn(def.defaults, key)) return def.defaults[key];
          throw invalid(
            `pluginInfo.${key}`,
            `is required: ${file} on this worker passes {${key}} to ${def.executable}`,
          );
        },
      });
    },
    createParser: createCommandParser,
  };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    return `${issue.keys.join(', ')}: is not a field (fields: ${Object.keys(externalAppSchema.shape).join(', ')})`;
  }
  // A bad record key: zod's own message is "Invalid key in record"; the key's is clearer.
  const message =
    issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
  return `${where || '(file)'}: ${message}`;
}

/** Parses one plugin file's text; throws `invalid_input` naming the file and the field. */
export function parseExternalApp(fileName: string, source: string): AppPlugin {
  const fail = (message: string) =>
    new DroverError('invalid_input', `apps folder: ${fileName}: ${message}`, 'apps-dir');
  const fromFile = basename(fileName, '.json');
  if (!APP_NAME_PATTERN.test(fromFile)) {
    throw fail('the file name must be <Name>.json, Name of letters, digits, "_", "." or "-"');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(source);
  } catch (error) {
    throw fail(`is not JSON (${(error as Error).message})`);
  }
  const parsed = externalAppSchema.safeParse(raw);
  if (!parsed.success) throw fail(describeIssue(parsed.error.issues[0]!));
  const def = parsed.data;
  if (def.name !== undefined && def.name !== fromFile) {
    throw fail(`name: is "${def.name}" but the file is named for "${fromFile}"`);
  }
  if (isBuiltinApp(fromFile)) throw fail('name: is a built-in application plugin of every worker');
  return externalApp(fromFile, def, fileName);
}

/**
 * Loads every `*.json` in `dir` (other files are ignored, so a README may sit there), in
 * name order. A missing folder, an unreadable or bad file, or two files for one plugin name
 * (names are compared ignoring case) is an error naming the file: a worker must not start
 * offering less than its administrator wrote.
 */
export async function loadExternalApps(dir: string): Promise<AppPlugin[]> {
  const fail = (message: string) =>
    new DroverError('invalid_input', `apps folder ${dir}: ${message}`, 'apps-dir');
  let entries: string[];
  try {
    entries = (await readdir(dir)).filter((f) => f.endsWith('.json') && !f.startsWith('.'));
  } catch (error) {
    throw fail(`cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  if (entries.length > MAX_APP_FILES) throw fail(`holds more than ${MAX_APP_FILES} .json files`);
  entries.sort();
  const apps: AppPlugin[] = [];
  const seen = new Map<string, string>();
  for (const file of entries) {
    const path = join(dir, file);
    const info = await stat(path);
    if (!info.isFile()) continue;
    if (info.size > MAX_APP_FILE_BYTES) {
      throw fail(`${file}: is larger than ${MAX_APP_FILE_BYTES / 1024} KiB`);
    }
    const app = parseExternalApp(path, await readFile(path, 'utf8'));
    const other = seen.get(app.name.toLowerCase());
    if (other) throw fail(`${file}: names the same plugin as ${other}`);
    seen.set(app.name.toLowerCase(), file);
    apps.push(app);
  }
  return apps;
}
