import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { LOG_DIRECTORY_VARIABLE } from '../core/job-spec.js';
import type { TaskAssignment } from '../core/types.js';

/**
 * A job's `logDirectory` (Deadline's log-to-file): the worker mirrors a task's log, as it
 * runs, to `<logDirectory>/<jobId>_<task index>.log`. One file per task: each attempt is
 * appended under a header line, and ends with the runner's final status line
 * (`[drover] task completed`, `[drover] task failed: …`), so a workstation (Katana's Render
 * Log) can follow one file across retries. Runner lines start with `[drover] `; the
 * process's stdout and stderr lines are written as they are. The file is written through
 * the worker's path mapping (the folder is mapped like output directories). A mirror that
 * cannot be written never fails the task: the manager's log stays the record.
 */
export function mirrorFileName(jobId: string, taskIndex: number): string {
  return `${jobId}_${taskIndex}.log`;
}

export class LogMirror {
  readonly path: string;
  #stream: WriteStream | undefined;
  #failed = false;

  private constructor(path: string, onError: (error: Error) => void) {
    this.path = path;
    const stream = createWriteStream(path, { flags: 'a' });
    stream.on('error', (error) => {
      if (this.#failed) return;
      this.#failed = true;
      onError(error);
    });
    this.#stream = stream;
  }

  /** The mirror the task's job asks for, or undefined (no `logDirectory`, or unusable). */
  static open(
    task: TaskAssignment,
    workerName: string,
    onError: (error: Error) => void,
  ): LogMirror | undefined {
    const folder = task.environment[LOG_DIRECTORY_VARIABLE];
    if (!folder) return undefined;
    try {
      mkdirSync(folder, { recursive: true });
    } catch (error) {
      onError(error as Error);
      return undefined;
    }
    const mirror = new LogMirror(join(folder, mirrorFileName(task.jobId, task.taskIndex)), onError);
    mirror.write(
      'system',
      `attempt ${task.attempt} of task ${task.taskIndex} of job ${task.jobId} on ${workerName}\n`,
    );
    return mirror;
  }

  write(stream: 'stdout' | 'stderr' | 'system', text: string): void {
    if (!this.#stream || this.#failed) return;
    this.#stream.write(stream === 'system' ? `[drover] ${text}` : text);
  }

  /** Flushes and closes the file (after the final status line). */
  close(): Promise<void> {
    const stream = this.#stream;
    this.#stream = undefined;
    if (!stream || stream.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      stream.once('error', () => resolve());
      stream.end(() => resolve());
    });
  }
}
