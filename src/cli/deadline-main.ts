import { runDeadlineCommand, runDeadlineCommandBackground } from './commands/deadline-command.js';

/**
 * The `deadlinecommand` and `deadlinecommandbg` executables (`bin/`): Deadline's argument
 * syntax (`-SubmitMultipleJobs`, single-dash options), so they are not commander commands.
 */
export async function deadlineCommandMain(
  args: string[],
  options: { background: boolean },
): Promise<number> {
  if (options.background) return runDeadlineCommandBackground(args, {});
  return runDeadlineCommand(args, { out: (line) => process.stdout.write(`${line}\n`) });
}
