import { commandLineSettingsSchema, parseAppSettings } from '../../../core/app-settings.js';
import type { TaskAssignment } from '../../../core/types.js';
import type { AppPlugin, LineInfo, OutputParser, ProcessSpec } from '../types.js';

/** The frames a token stands for: the task's chunk, or one frame of it in per-frame mode. */
interface FrameContext {
  frames: readonly number[];
  start: number;
  end: number;
}

const TOKEN =
  /\{frame\}|\{start\}|\{end\}|\{frames\}|<(STARTFRAME|ENDFRAME)(?:%(\d{1,2}))?>|<QUOTE>/g;

function padFrame(frame: number, width: number): string {
  const digits = String(Math.abs(frame)).padStart(width, '0');
  return frame < 0 ? `-${digits}` : digits;
}

/**
 * Replaces frame tokens anywhere in an argument (`-o out_{frame}.exr`, `<STARTFRAME%4>`),
 * in one pass so a replaced value is never read as a token again:
 * `{frame}`/`{start}` = first frame, `{end}` = last frame, `{frames}` = `1,2,3`,
 * Deadline's `<STARTFRAME>`, `<ENDFRAME>`, `<STARTFRAME%n>`/`<ENDFRAME%n>` (zero-padded to
 * n digits) and `<QUOTE>` (a literal `"`).
 */
export function substituteTokens(arg: string, ctx: FrameContext): string {
  return arg.replace(TOKEN, (token, which: string | undefined, pad: string | undefined) => {
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
    const frame = which === 'STARTFRAME' ? ctx.start : ctx.end;
    return pad === undefined ? String(frame) : padFrame(frame, Number(pad));
  });
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
    const template = [settings.executable, ...settings.arguments];
    const perFrame = settings.perFrame || template.some((arg) => arg.includes('{frame}'));
    const contexts: FrameContext[] = perFrame
      ? task.frames.map((f) => ({ frames: [f], start: f, end: f }))
      : [{ frames: task.frames, start: task.frames[0] ?? 0, end: task.frames.at(-1) ?? 0 }];
    return contexts.map((ctx) => {
      const spec: ProcessSpec = { argv: template.map((arg) => substituteTokens(arg, ctx)) };
      if (settings.workingDirectory !== undefined) spec.cwd = settings.workingDirectory;
      return spec;
    });
  },

  createParser(): OutputParser {
    return {
      line(text: string): LineInfo | undefined {
        // `Progress: 45%`, `PROGRESS: 45`, `progress: 12.5 %`; no error detection: the exit
        // code decides.
        const m = /^\s*progress:\s*(\d+(?:\.\d+)?)\s*%?\s*$/i.exec(text);
        if (!m) return undefined;
        return { progress: Math.min(100, Number(m[1])) };
      },
    };
  },
};
