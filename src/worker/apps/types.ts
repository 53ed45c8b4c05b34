import type { TaskAssignment } from '../../core/types.js';

/**
 * An application plugin turns a task into processes on the worker and reads their output.
 * One folder per plugin under `src/worker/apps/<name>/`.
 */

/** One process to run: an argv array, never a shell string. */
export interface ProcessSpec {
  argv: string[];
  /** Added to the worker's environment (the job's environment is added by the runner). */
  env?: Record<string, string>;
  cwd?: string;
}

/** What one output line says, if anything. */
export interface LineInfo {
  /** Task progress in percent (0–100). */
  progress?: number;
  /** A short status text for the monitor ("Rendering frame 12, sample 40/128"). */
  status?: string;
  /** The line reports an error: the task fails even if the process exits 0. */
  error?: string;
}

export interface OutputParser {
  line(text: string, stream: 'stdout' | 'stderr'): LineInfo | undefined;
}

export interface AppPlugin {
  /** The name jobs use in `plugin` (`CommandLine`, `builtin-render`, `Blender`, …). */
  readonly name: string;
  /**
   * The processes to run for the task, in order; the task fails at the first one that fails.
   * Throws a DroverError (`invalid_input`, naming the setting) when plugin settings are wrong.
   */
  processes(task: TaskAssignment): ProcessSpec[];
  /** A fresh parser per task: it may keep state (e.g. frames done so far). */
  createParser(task: TaskAssignment): OutputParser;
}
