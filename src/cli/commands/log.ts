import { invalid } from '../../core/errors.js';
import { connect, type ConnectionOptions } from '../connection.js';
import { printJson, terminalSafe } from '../output.js';

export interface LogOptions extends ConnectionOptions {
  attempt?: number;
  follow?: boolean;
  json?: boolean;
}

/** `JOB:TASK` (or `JOB` and a task number) into its parts. */
export function parseTaskRef(ref: string, index?: string): { jobId: string; index: number } {
  const [jobId, fromRef] = ref.includes(':') ? ref.split(':', 2) : [ref, index];
  const n = Number(fromRef ?? '0');
  if (!jobId || !Number.isInteger(n) || n < 0) {
    throw invalid('task', `"${ref}" is not a task: write JOB:TASK (e.g. 018c…:3)`);
  }
  return { jobId, index: n };
}

/** Prints a task's log (the latest attempt by default); `--follow` keeps printing while it runs. */
export async function log(ref: string, index: string | undefined, o: LogOptions): Promise<void> {
  const client = connect(o);
  const t = parseTaskRef(ref, index);
  let after = 0;
  let attempt = o.attempt;
  const all: unknown[] = [];
  for (;;) {
    const page = await client.taskLog(t.jobId, t.index, { after, ...(attempt ? { attempt } : {}) });
    attempt = page.attempt;
    for (const c of page.chunks) {
      after = c.seq;
      if (o.json) all.push(c);
      else
        (c.stream === 'stderr' ? process.stderr : process.stdout).write(terminalSafe(c.text, true));
    }
    if (page.chunks.length > 0) continue;
    if (!o.follow) break;
    const [task] = await client.listTasks(t.jobId, { offset: t.index, limit: 1 });
    if (!task || task.state !== 'rendering' || task.attempt !== attempt) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (o.json) printJson({ attempt, chunks: all });
}
