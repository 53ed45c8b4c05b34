import { commandLineSettingsSchema, parseAppSettings } from '../../../core/app-settings.js';
import type { TaskAssignment } from '../../../core/types.js';
import type { AppPlugin, LineInfo, OutputParser, ProcessSpec } from '../types.js';

/** The frames a token stands for: the task's chunk, or one frame of it in per-frame mode. */
export interface FrameContext {
  frames: readonly number[];
  start: number;
  end: number;
}

const TOKEN = /\{([A-Za-z_][A-Za-z0-9_]{0,63})\}|<(STARTFRAME|ENDFRAME)(?:%(\d{1,2}))?>|<QUOTE>/g;

function padFrame(frame: number, width: number): string {
  const digits = String(Math.abs(frame)).padStart(width, '0');
  return frame < 0 ? `-${digits}` : digits;
}

/**
 * Replaces frame tokens anywhere in an argument (`-o out_{frame}.exr`, `<STARTFRAME%4>`),
 * in one pass so a replaced value is never read as a token again:
 * `{frame}`/`{start}` = first frame, `{end}` = last frame, `{frames}` = `1,2,3`,
 * Deadline's `<STARTFRAME>`, `<ENDFRAME>`, `<STARTFRAME%n>`/`<ENDFRAME%n>` (zero-padded to
 * n digits) and `<QUOTE>` (a literal `"`). Any other `{Name}` is replaced by `lookup(Name)`
 * when that gives a value, and left as written otherwise.
 */
export function substituteTokens(
  arg: string,
  ctx: FrameContext,
  lookup?: (name: string) => string | undefined,
): string {
  return arg.replace(
    TOKEN,
    (token, name: string | undefined, which: string | undefined, pad: string | undefined) => {
      switch (token) {
        case '{frame}':
        case '{start}':
          return String(ctx.start);
        case '{end}':
          return String(ctx.end);
        case '{frames}':
          return ctx.frames.join(',');
        case '<QUOTE>':
          return '"';
      }
      if (name !== undefined) return lookup?.(name) ?? token;
      const frame = which === 'STARTFRAME' ? ctx.start : ctx.end;
      return pad === undefined ? String(frame) : padFrame(frame, Number(pad));
    },
  );
}

/** How `commandProcesses` runs a command template. */
export interface CommandOptions {
  /** One process per frame instead of one per task (also when an argument uses `{frame}`). */
  perFrame: boolean;
  cwd?: string;
  env?: Record<string, string>;
  /** Values of other `{Name}` tokens (see `substituteTokens`). */
  lookup?: (name: string, ctx: FrameContext) => string | undefined;
}

/**
 * The processes of a command template (`[executable, ...arguments]`) for a task's frames:
 * one for the chunk, or one per frame in the chunk's order. Shared by `CommandLine` and the
 * application plugins a worker loads from its apps folder (`../external/`).
 */
export function commandProcesses(
  template: readonly string[],
  frames: readonly number[],
  o: CommandOptions,
): ProcessSpec[] {
  const perFrame = o.perFrame || template.some((arg) => arg.includes('{frame}'));
  const contexts: FrameContext[] = perFrame
    ? frames.map((f) => ({ frames: [f], start: f, end: f }))
    : [{ frames, start: frames[0] ?? 0, end: frames.at(-1) ?? 0 }];
  return contexts.map((ctx) => {
    const lookup = o.lookup && ((name: string) => o.lookup!(name, ctx));
    const spec: ProcessSpec = { argv: template.map((arg) => substituteTokens(arg, ctx, lookup)) };
    if (o.cwd !== undefined) spec.cwd = o.cwd;
    if (o.env !== undefined) spec.env = o.env;
    return spec;
  });
}

/** CommandLine's output parser; no error detection: the exit code decides. */
export function createCommandParser(): OutputParser {
  return {
    line(text: string): LineInfo | undefined {
      // `Progress: 45%`, `PROGRESS: 45`, `progress: 12.5 %`.
      const m = /^\s*progress:\s*(\d+(?:\.\d+)?)\s*%?\s*$/i.exec(text);
      if (!m) return undefined;
      return { progress: Math.min(100, Number(m[1])) };
    },
  };
}

/**
 * `CommandLine`: runs `executable` with `arguments`, never through a shell. One process per
 * task, or one per frame (in the chunk's order) when `perFrame` is set or an argument uses
 * `{frame}` — a command that takes one frame cannot render a chunk.
 */
export const commandLineApp: AppPlugin = {
  name: 'CommandLine',

  processes(task: TaskAssignment): ProcessSpec[] {
    const settings = parseAppSettings(commandLineSettingsSchema, task.pluginInfo);
    return commandProcesses([settings.executable, ...settings.arguments], task.frames, {
      perFrame: settings.perFrame,
      ...(settings.workingDirectory !== undefined ? { cwd: settings.workingDirectory } : {}),
    });
  },

  createParser: createCommandParser,
};
