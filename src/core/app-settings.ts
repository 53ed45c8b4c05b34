import { z } from 'zod';
import { invalid } from './errors.js';
import { absolutePath } from './job-spec.js';
import { absolutePathProblem } from './paths.js';
import { parseSequencePattern } from './sequences.js';
import { text } from './text.js';

/**
 * The settings (`pluginInfo`) of each built-in application plugin. The manager validates a
 * job's `pluginInfo` with these at submission, so a typo fails the submission instead of a
 * task on some worker an hour later; the worker parses them again to apply the defaults.
 *
 * Settings are strict objects: an unknown key is refused and the message lists the known
 * ones. Numbers and booleans are also accepted as strings (`"4"`, `"true"`), because
 * Deadline-style submitters write plugin info as `key=value` text.
 */

/** An integer setting in `[min, max]`; a string of digits is read as its number. */
function intSetting(min: number, max: number) {
  return z.preprocess(
    (v) => (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v),
    z
      .number({ error: `must be a whole number from ${min} to ${max}` })
      .int(`must be a whole number from ${min} to ${max}`)
      .min(min, `must be at least ${min}`)
      .max(max, `must be at most ${max}`),
  );
}

/** A boolean setting; `"true"`/`"false"` (any case) are read as booleans. */
function boolSetting() {
  return z.preprocess(
    (v) =>
      typeof v === 'string' && /^(true|false)$/i.test(v.trim()) ? /^true$/i.test(v.trim()) : v,
    z.boolean({ error: 'must be true or false' }),
  );
}

function stringSetting(what = 'a string') {
  return text({
    error: (issue) => (issue.input === undefined ? 'is required' : `must be ${what}`),
  });
}

function enumSetting<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: `must be one of ${values.join(', ')}` });
}

const stringList = z
  .array(text({ error: 'must be a string' }), { error: 'must be a list of strings' })
  .max(1000, 'at most 1000 entries');

/**
 * Splits a command line on whitespace, the way a user expects from a shell but without one:
 * double quotes group words into one argument and are removed (`-o "my file.png"` gives
 * `-o`, `my file.png`; `""` gives an empty argument). There are no other escapes: use
 * `<QUOTE>` for a literal double quote. Returns undefined when a quote is not closed.
 */
export function splitArguments(line: string): string[] | undefined {
  const args: string[] = [];
  let current = '';
  let inToken = false;
  let inQuotes = false;
  for (const ch of line) {
    if (ch === '"') {
      inQuotes = !inQuotes;
      inToken = true;
    } else if (!inQuotes && /\s/.test(ch)) {
      if (inToken) args.push(current);
      current = '';
      inToken = false;
    } else {
      current += ch;
      inToken = true;
    }
  }
  if (inQuotes) return undefined;
  if (inToken) args.push(current);
  return args;
}

/** A list of strings, or one string split by `splitArguments`. */
const argumentsSetting = z.preprocess(
  (value, ctx) => {
    if (typeof value !== 'string') return value;
    const args = splitArguments(value);
    if (args === undefined) {
      ctx.addIssue({ code: 'custom', message: 'has a double quote that is never closed' });
      return z.NEVER;
    }
    return args;
  },
  z
    .array(text({ error: 'must be a string' }), {
      error: 'must be a list of strings or a string',
    })
    .max(1000, 'at most 1000 entries'),
);

const absolutePathSetting = text({
  error: (issue) => (issue.input === undefined ? 'is required' : 'must be an absolute path'),
}).pipe(absolutePath);

/**
 * Why `executable` cannot be run the same way on every worker, or undefined. It must be an
 * absolute path (POSIX, `C:\…`, UNC; no `..`) or a bare program name without a separator,
 * which each worker looks up on its own PATH. A relative path (`bin/sh`, `../../bin/sh`)
 * would be resolved against whatever folder the task happens to start in, which differs
 * from node to node, so it is refused at submission.
 */
export function executableProblem(executable: string): string | undefined {
  if (!/[\\/]/.test(executable)) {
    return executable === '.' || executable === '..'
      ? 'must be an absolute path or a program name looked up on PATH'
      : undefined;
  }
  const problem = absolutePathProblem(executable);
  if (problem === undefined) return undefined;
  return /is not an absolute path/.test(problem)
    ? `"${executable}" is a relative path: give an absolute path, or a bare program name that each worker looks up on its PATH`
    : problem;
}

/**
 * A program to run: an absolute path or a bare name looked up on the worker's PATH (also an
 * apps folder's `executable`).
 */
export function executableSetting(required = 'is required') {
  return text({
    error: (issue) => (issue.input === undefined ? required : 'must be a string'),
  })
    .trim()
    .min(1, 'must not be empty')
    .max(1024, 'must be at most 1024 characters')
    .superRefine((exe, ctx) => {
      const problem = executableProblem(exe);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
}

/** `CommandLine`: runs an executable with arguments, once per task or once per frame. */
export const commandLineSettingsSchema = z.strictObject({
  /**
   * An absolute path, or a bare program name looked up on the worker's PATH (see
   * `executableProblem`). Never run through a shell.
   */
  executable: executableSetting(),
  /**
   * A list of arguments, or one string split on whitespace with double quotes grouping
   * (see `splitArguments`). Tokens such as `{frame}` and `<STARTFRAME%4>` are replaced.
   */
  arguments: argumentsSetting.default([]),
  workingDirectory: absolutePathSetting.optional(),
  /** Run one process per frame of the task instead of one per task. */
  perFrame: boolSetting().default(false),
});
export type CommandLineSettings = z.output<typeof commandLineSettingsSchema>;

/** The scenes the built-in renderer can draw. */
export const builtinRenderScenes = ['spheres', 'mandelbrot'] as const;
export type BuiltinRenderScene = (typeof builtinRenderScenes)[number];

const outputPattern = text({ error: 'must be a file name pattern such as frame_####.png' })
  .min(1, 'must not be empty')
  .max(1024)
  .superRefine((p, ctx) => {
    const problem = outputPatternProblem(p);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

function outputPatternProblem(p: string): string | undefined {
  if (/^([\\/]|[A-Za-z]:)/.test(p)) {
    return 'must be relative to the job output directory, not absolute';
  }
  if (p.split(/[\\/]+/).some((s) => s === '..')) return 'must not contain a ".." segment';
  if (!p.includes('#')) return 'must contain # padding for the frame number (frame_####.png)';
  if (!/\.png$/i.test(p)) return 'must end with .png (the built-in renderer writes PNG)';
  return undefined;
}

/** `builtin-render`: Drover's own small CPU renderer, writing real PNG frames. */
export const builtinRenderSettingsSchema = z.strictObject({
  width: intSetting(16, 4096).default(320),
  height: intSetting(16, 4096).default(180),
  /** Samples per pixel (antialiasing). */
  samples: intSetting(1, 64).default(1),
  scene: enumSetting(builtinRenderScenes).default('spheres'),
  /** File name under the job's first output directory; each run of `#` is the zero-padded frame. */
  outputPattern: outputPattern.default('frame_####.png'),
  /** Extra sleep per frame, so tests and demos can have tasks that last a while. */
  frameDelayMs: intSetting(0, 60_000).default(0),
});
export type BuiltinRenderSettings = z.output<typeof builtinRenderSettingsSchema>;

/** Blender's `-F` image formats. */
export const blenderFormats = [
  'PNG',
  'JPEG',
  'JPEG2000',
  'BMP',
  'TGA',
  'RAWTGA',
  'TIFF',
  'OPEN_EXR',
  'OPEN_EXR_MULTILAYER',
  'HDR',
  'CINEON',
  'DPX',
  'WEBP',
  'IRIS',
] as const;

/** `Blender`: a background render (`blender -b scene.blend … -a`). */
export const blenderSettingsSchema = z.strictObject({
  sceneFile: absolutePathSetting,
  /** Blender's `-o` pattern (`//render/frame_####`, `/out/shot_###.exr`). */
  outputPath: stringSetting().min(1, 'must not be empty').max(1024).optional(),
  format: enumSetting(blenderFormats).optional(),
  /** Blender's `-E`: `CYCLES`, `BLENDER_EEVEE`, `BLENDER_EEVEE_NEXT`, `BLENDER_WORKBENCH`, … */
  engine: stringSetting()
    .regex(/^[A-Za-z0-9_]+$/, 'must be an engine name such as CYCLES or BLENDER_EEVEE')
    .optional(),
  /** Blender's `-t`; 0 = all cores. */
  threads: intSetting(0, 1024).optional(),
  executable: executableSetting().default('blender'),
  /** Added before the final `-a`/`-f` (e.g. `--python-expr …`, `--cycles-device CUDA`). */
  extraArguments: stringList.default([]),
});
export type BlenderSettings = z.output<typeof blenderSettingsSchema>;

/** Most commands one Katana job runs (`command0` … `command63`). */
export const KATANA_MAX_COMMANDS = 64;

const katanaCommands = Object.fromEntries(
  Array.from({ length: KATANA_MAX_COMMANDS }, (_, i) => [
    `command${i}`,
    argumentsSetting
      .refine((argv) => argv.length > 0, 'must not be an empty command')
      .refine((argv) => executableProblem(argv[0] ?? '') === undefined, {
        message: 'must start with an absolute path or a program name looked up on PATH',
      })
      .optional(),
  ]),
) as Record<`command${number}`, z.ZodOptional<z.ZodType<string[], unknown>>>;

/**
 * `Katana`: a render job Katana's farm plug-in submits (`integrations/katana/`): the job
 * request's ordered commands, run in order, the task failing at the first that fails. Each
 * command is its own setting, `command0`, `command1`, … (an argv list, or one string split
 * like `CommandLine` arguments), because plugin settings are flat and each argument is then
 * path-mapped for the worker like any other setting.
 */
export const katanaSettingsSchema = z
  .strictObject({
    ...katanaCommands,
    /** The render node's Katana installation (set as `KATANA_ROOT` for the commands). */
    katanaRoot: absolutePathSetting.optional(),
    workingDirectory: absolutePathSetting.optional(),
    /**
     * Preview and Live Renders: the artist's Catalog Server, `host:port`, which the render
     * reaches over TCP. Given to the commands as `KATANA_CATALOG_SERVER` and `{catalogServer}`.
     */
    catalogServer: stringSetting('host:port')
      .regex(/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$/, 'must be host:port')
      .optional(),
    /** `Disk`, `Preview` or `Live` (for the log and the monitor). */
    renderType: enumSetting(['Disk', 'Preview', 'Live'] as const).default('Disk'),
  })
  .superRefine((settings, ctx) => {
    const given = settings as Record<string, unknown>;
    let last = -1;
    for (let i = 0; i < KATANA_MAX_COMMANDS; i++) {
      if (given[`command${i}`] === undefined) continue;
      if (i !== last + 1) {
        ctx.addIssue({
          code: 'custom',
          path: [`command${last + 1}`],
          message: `is missing: commands are numbered from command0 without gaps`,
        });
        return;
      }
      last = i;
    }
    if (last < 0) {
      ctx.addIssue({ code: 'custom', path: ['command0'], message: 'is required' });
    }
  });
export type KatanaSettings = z.output<typeof katanaSettingsSchema>;

/** The commands of Katana settings, in order. */
export function katanaCommandList(settings: KatanaSettings): string[][] {
  const given = settings as Record<string, unknown>;
  const commands: string[][] = [];
  for (let i = 0; i < KATANA_MAX_COMMANDS && Array.isArray(given[`command${i}`]); i++) {
    commands.push(given[`command${i}`] as string[]);
  }
  return commands;
}

/** A frame number a review may start or end at (see `MAX_FRAME_MAGNITUDE`). */
const reviewFrame = intSetting(-1_000_000_000, 1_000_000_000);

/**
 * `review`: makes a version's review media with ffmpeg (`src/worker/apps/review/`): a
 * thumbnail of the middle frame, an H.264 MP4 and a VP9 WebM with burn-ins, written into
 * `outputDirectory` as `<outputName>.jpg`, `.mp4` and `.webm`. Settings are flat so every
 * path is path-mapped for the worker like any other setting.
 */
export const reviewSettingsSchema = z
  .strictObject({
    /** The folder holding the frames. */
    inputDirectory: absolutePathSetting,
    /** The frames' file name in that folder: `beauty.####.exr`, `beauty.%04d.png`, … */
    inputPattern: stringSetting('a frame pattern such as beauty.####.exr')
      .min(1, 'must not be empty')
      .max(1024, 'at most 1024 characters')
      .superRefine((p, ctx) => {
        const problem = reviewPatternProblem(p);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    firstFrame: reviewFrame,
    lastFrame: reviewFrame,
    /** Frames per second of the movie. */
    fps: intSetting(1, 120).default(24),
    /** Where the thumbnail and movies are written (created if missing). */
    outputDirectory: absolutePathSetting,
    /** Base name of the outputs (`review` → `review.mp4`, `review.webm`, `review.jpg`). */
    outputName: stringSetting('a file name without a folder')
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be letters, digits, ".", "_" or "-"')
      .default('review'),
    /** Burned in at the top left, with the version: `show/seq010/sh010/lightingMain`. */
    product: stringSetting().max(256, 'at most 256 characters').default(''),
    /** The version number, burned in as `v003` (0: none). */
    version: intSetting(0, 999_999).default(0),
    /** The movies are scaled down to at most this width (kept even, aspect kept). */
    maxWidth: intSetting(16, 7680).default(1920),
    thumbnailWidth: intSetting(16, 1920).default(320),
    /** Burn in product, version and frame number (needs the DejaVu font on the worker). */
    burnIn: boolSetting().default(true),
    /** Also make the VP9 WebM (the fallback for browsers without H.264). */
    webm: boolSetting().default(true),
  })
  .superRefine((settings, ctx) => {
    if (settings.lastFrame < settings.firstFrame) {
      ctx.addIssue({
        code: 'custom',
        path: ['lastFrame'],
        message: `must not be before firstFrame (${settings.firstFrame})`,
      });
    } else if (settings.lastFrame - settings.firstFrame >= REVIEW_MAX_FRAMES) {
      ctx.addIssue({
        code: 'custom',
        path: ['lastFrame'],
        message: `a review covers at most ${REVIEW_MAX_FRAMES} frames`,
      });
    }
  });
export type ReviewSettings = z.output<typeof reviewSettingsSchema>;
/** The plugin info a submitter sends for a `review` job (defaults may be left out). */
export type ReviewPluginInfo = z.input<typeof reviewSettingsSchema>;
/** At most this many frames in one review movie (about 30 minutes at 24 fps). */
export const REVIEW_MAX_FRAMES = 50_000;

/**
 * The files a `review` task writes (for the publish plugin and the monitor): the outputs are
 * `<outputDirectory>/<outputName>.jpg|.mp4|.webm`, each written under a temporary name and
 * renamed, so a file that exists is whole.
 */
export function reviewOutputFiles(
  settings: Pick<ReviewSettings, 'outputDirectory' | 'outputName' | 'webm'>,
): { thumbnail: string; mp4: string; webm: string | undefined } {
  const dir = settings.outputDirectory.replace(/[\\/]+$/, '') || '/';
  const sep = dir.endsWith('/') || dir.endsWith('\\') ? '' : dir.includes('\\') ? '\\' : '/';
  const base = `${dir}${sep}${settings.outputName}`;
  return {
    thumbnail: `${base}.jpg`,
    mp4: `${base}.mp4`,
    webm: settings.webm ? `${base}.webm` : undefined,
  };
}

function reviewPatternProblem(p: string): string | undefined {
  if (/^([\\/]|[A-Za-z]:)/.test(p)) return 'must be relative to inputDirectory, not absolute';
  if (p.split(/[\\/]+/).some((s) => s === '..')) return 'must not contain a ".." segment';
  try {
    parseSequencePattern(p, 'inputPattern');
  } catch (err) {
    return err instanceof Error ? err.message.replace(/^inputPattern: /, '') : String(err);
  }
  return undefined;
}

/** The global file systems the folder job can ask about sync state. */
export const gfsKinds = ['hammerspace', 'simulated', 'local'] as const;

/**
 * `MakeDirectories`: the gfs-sync plugin's folder job. Creates the directories, then polls
 * the global file system until each one has reached every site or the count runs out.
 */
export const makeDirectoriesSettingsSchema = z.strictObject({
  directories: z
    .array(absolutePathSetting, { error: 'must be a list of absolute paths' })
    .min(1, 'must name at least one directory')
    .max(64, 'at most 64 directories'),
  /** Seconds between two checks. */
  iterationDelay: intSetting(0, 100).default(1),
  /** Checks before giving up (0: every directory is reported timed out). */
  iterationCount: intSetting(0, 500).default(20),
  gfs: enumSetting(gfsKinds).default('local'),
  /** The simulated GFS's root folder, as the worker sees it. */
  gfsRoot: absolutePathSetting.optional(),
});
export type MakeDirectoriesSettings = z.output<typeof makeDirectoriesSettingsSchema>;

/** Each folder's outcome, in Deadline's Hammerspace plugin's words. */
export type FolderOutcome = 'Sync Complete' | 'Sync Timed Out' | 'Sync Skipped';
/**
 * The last line the folder job prints: `DROVER_GFS_SYNC {"outcomes": [...]}`, outcomes in
 * the order of `directories`, so the manager can keep them as data on the jobs.
 */
export const FOLDER_RESULT_PREFIX = 'DROVER_GFS_SYNC ';

/**
 * The settings schema of each built-in application plugin, by plugin name. Every worker runs
 * these; any other plugin name runs only on workers that offer it (`--apps-dir`).
 */
export const appSettingsSchemas: Record<string, z.ZodType> = {
  CommandLine: commandLineSettingsSchema,
  'builtin-render': builtinRenderSettingsSchema,
  Blender: blenderSettingsSchema,
  MakeDirectories: makeDirectoriesSettingsSchema,
  Katana: katanaSettingsSchema,
  review: reviewSettingsSchema,
};

/** The built-in plugin names: every worker runs them. */
export const knownApps: string[] = Object.keys(appSettingsSchemas);

/** Whether every worker runs this plugin (`hasOwn`, so `toString` is not taken for one). */
export function isBuiltinApp(name: string): boolean {
  return Object.hasOwn(appSettingsSchemas, name);
}

/**
 * A plugin name a job may use and a worker may offer (`MayaBatch`, `Nuke`, `3dsmax`,
 * `OpenPypeTileAssembler`): Deadline's plugin names are folder names of this shape.
 */
export const APP_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * Parses plugin settings with `schema`, or throws `invalid_input` naming the first bad
 * setting (`pluginInfo.width: must be at most 4096`).
 */
export function parseAppSettings<S extends z.ZodType>(schema: S, pluginInfo: unknown): z.output<S> {
  const result = schema.safeParse(pluginInfo ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (!issue) throw invalid('pluginInfo', 'is not valid');
  if (issue.code === 'unrecognized_keys') {
    const known = schema instanceof z.ZodObject ? Object.keys(schema.shape).join(', ') : '';
    const key = issue.keys[0] ?? '';
    throw invalid(
      `pluginInfo.${key}`,
      `is not a setting of this plugin${known ? ` (settings: ${known})` : ''}`,
    );
  }
  throw invalid(['pluginInfo', ...issue.path.map(String)].join('.'), issue.message);
}

/**
 * Validates a job's plugin and its settings at submission. A built-in plugin's settings are
 * checked by its schema (defaults applied). Any other well-formed name is accepted with its
 * settings as sent (the job schema bounds them): it runs where a worker offers that plugin,
 * and until one does the job says so (`pluginOffers`). A name that differs from a built-in
 * one only in case is refused, since it is a typo that would otherwise wait for ever.
 */
export function validatePluginInfo(plugin: string, pluginInfo: unknown): unknown {
  const schema = isBuiltinApp(plugin) ? appSettingsSchemas[plugin] : undefined;
  if (schema) return parseAppSettings(schema, pluginInfo);
  const builtin = knownApps.find((n) => n.toLowerCase() === plugin.toLowerCase());
  if (builtin)
    throw invalid('plugin', `unknown application plugin "${plugin}" (did you mean "${builtin}"?)`);
  if (!APP_NAME_PATTERN.test(plugin)) {
    throw invalid(
      'plugin',
      `"${plugin}" is not a plugin name: letters, digits, "_", "." or "-", at most 64 (built-in: ${knownApps.join(', ')})`,
    );
  }
  return pluginInfo ?? {};
}
