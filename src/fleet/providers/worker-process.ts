import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Starting `drover worker` processes on this machine: shared by `drover dev` (its fixed
 * workers, `src/cli/farm/local-farm.ts`) and the `local` fleet provider (`local.ts`).
 */

/**
 * The CLI's entry point, which worker processes are started with: `dist/cli/main.js` beside
 * this module once built; from the sources (tests run them), the built one.
 */
export const CLI_MAIN = ((): string => {
  const beside = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
  return existsSync(beside)
    ? beside
    : fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));
})();

/** Where a local worker's token file lives (mode 0600, in a 0700 folder). */
export function workerTokenPath(data: string, worker: string): string {
  return join(data, 'worker-tokens', worker.replace(/[^A-Za-z0-9._-]/g, '_'));
}

export interface WorkerProcessOptions {
  /** The CLI entry point to run (default `CLI_MAIN`; tests pass the built one). */
  cliMain?: string;
  managerUrls: readonly string[];
  name: string;
  region: string;
  pools?: readonly string[];
  groups?: readonly string[];
  slots: number;
  /** Seconds a graceful stop lets running tasks finish. */
  drainTimeoutS: number;
  logLevel: string;
  /**
   * The token's file, private to this user. Never `--token` (visible to everyone in `ps`)
   * nor `DROVER_TOKEN` (copied into every task process's environment).
   */
  tokenFile?: string;
  /** Either a stream the caller pipes stdout/stderr into, or a log file written directly. */
  output: { pipe: true } | { file: string };
  /**
   * Own process group, not ended with the caller's: a fleet's workers outlive a manager
   * restart (the next manager adopts them) and a Ctrl-C on the terminal reaches only the
   * manager, which stops them itself.
   */
  detached?: boolean;
}

/** Starts one `drover worker` process. */
export function spawnWorkerProcess(o: WorkerProcessOptions): ChildProcess {
  // The user's own DROVER_TOKEN (often an admin token for the CLI) is not the worker's.
  const env = { ...process.env };
  delete env.DROVER_TOKEN;
  delete env.DROVER_TOKEN_FILE;
  const args = [
    o.cliMain ?? CLI_MAIN,
    'worker',
    '--manager',
    o.managerUrls.join(','),
    '--name',
    o.name,
    '--region',
    o.region,
    '--slots',
    String(o.slots),
    '--drain-timeout',
    String(o.drainTimeoutS),
    '--log-level',
    o.logLevel,
    ...(o.pools && o.pools.length > 0 ? ['--pools', o.pools.join(',')] : []),
    ...(o.groups && o.groups.length > 0 ? ['--groups', o.groups.join(',')] : []),
    ...(o.tokenFile ? ['--token-file', o.tokenFile] : []),
  ];
  if ('pipe' in o.output) {
    return spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
      detached: o.detached ?? false,
    });
  }
  mkdirSync(dirname(o.output.file), { recursive: true });
  const fd = openSync(o.output.file, 'a');
  try {
    return spawn(process.execPath, args, {
      stdio: ['ignore', fd, fd],
      env,
      detached: o.detached ?? false,
    });
  } finally {
    // The child has its own copy of the descriptor.
    closeSync(fd);
  }
}

/** SIGTERM (the worker hands back what it runs), SIGKILL if it has not exited in `graceMs`. */
export function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      done();
    });
    child.kill('SIGTERM');
  });
}
