/**
 * The environment a task's process gets: the worker's own, minus what only the worker may
 * know; then the job's variables and the application plugin's; then the runner's `DROVER_*`
 * variables, which nothing before them can replace.
 *
 * Why: a task runs whatever the job says (`/usr/bin/env` is enough) and its output goes to a
 * log every read-only token can read. The worker's token in that log let anyone register a
 * fake worker and "complete" other users' tasks (issue 10).
 */

/**
 * Variables a Drover process reads for its own configuration, never passed to a task.
 * One list: add a variable here when the worker (or the CLI it runs in) starts reading one.
 * - `DROVER_TOKEN`, `DROVER_TOKEN_FILE`: the worker's credentials (`drover worker`).
 * - `DROVER_URL`: the manager's address (`drover worker`, every CLI command).
 * - `DROVER_DB`: a manager's store, which may be a `postgres://` URL with a password.
 */
export const AGENT_ONLY_VARIABLES: readonly string[] = [
  'DROVER_TOKEN',
  'DROVER_TOKEN_FILE',
  'DROVER_URL',
  'DROVER_DB',
];

/** A portable environment variable name; anything else is dropped from a job's variables. */
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface TaskEnvironmentInput {
  /** The worker's environment (`process.env`). */
  inherited: NodeJS.ProcessEnv;
  /** The job's variables. */
  job?: Readonly<Record<string, string>>;
  /** The application plugin's variables for this process. */
  plugin?: Readonly<Record<string, string | undefined>>;
  /** The runner's own (`DROVER_JOB_ID`, …): always the values the task sees. */
  runner: Readonly<Record<string, string>>;
}

export interface TaskEnvironment {
  env: NodeJS.ProcessEnv;
  /** Job or plugin variables left out, with why (for the task log). */
  ignored: { name: string; reason: string }[];
}

export function taskEnvironment(input: TaskEnvironmentInput): TaskEnvironment {
  // Windows compares names without case: `drover_token` is DROVER_TOKEN there.
  const key = process.platform === 'win32' ? (n: string) => n.toUpperCase() : (n: string) => n;
  const agentOnly = new Set(AGENT_ONLY_VARIABLES.map(key));
  const reserved = new Set(Object.keys(input.runner).map(key));
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(input.inherited)) {
    if (!agentOnly.has(key(name)) && !reserved.has(key(name))) env[name] = value;
  }
  const ignored: TaskEnvironment['ignored'] = [];
  for (const vars of [input.job, input.plugin]) {
    for (const [name, value] of Object.entries(vars ?? {})) {
      if (value === undefined) continue;
      if (!NAME.test(name)) {
        // `DROVER_WORKER=x` as a name becomes `DROVER_WORKER=x=…` in the process's
        // environment block, which getenv("DROVER_WORKER") finds before the runner's.
        ignored.push({ name, reason: 'not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)' });
        continue;
      }
      if (reserved.has(key(name))) {
        ignored.push({ name, reason: 'set by the worker for every task' });
        continue;
      }
      // A case-variant of an inherited name replaces it (Windows) rather than doubling it.
      for (const existing of Object.keys(env)) {
        if (existing !== name && key(existing) === key(name)) delete env[existing];
      }
      env[name] = value;
    }
  }
  Object.assign(env, input.runner);
  return { env, ignored };
}
