import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DroverClient } from '../../src/client/index.js';
import type { Task } from '../../src/core/types.js';
import { TEST_POSTGRES_URL } from '../../src/store/conformance/postgres-databases.js';
import { createDatabase, databaseUrl, dropDatabase } from '../../src/store/postgres/index.js';
import { CLI } from '../farm.js';

/**
 * The chaos run of issue 7: a farm of real processes (one manager, N workers) renders short
 * tasks that each append their frame to one file, while workers are SIGKILLed (and started
 * again) and the manager is SIGKILLed and started again — on PostgreSQL also PostgreSQL
 * itself is restarted. Used by `test/serial/chaos.test.ts` (bounded, in CI) and by
 * `npm run chaos` (full size, prints the figures as JSON).
 *
 * What "exactly once" means here. Execution is at least once, and must be: a worker killed
 * after its task's process appended its line but before the manager heard of it cannot be
 * told apart from one killed before, so the task runs again and the file gets a second line
 * for that frame. What the farm promises is that every task's *result* is accepted exactly
 * once: one `task.completed` event per task, and the attempt the store recorded as
 * completed is one whose line is in the file exactly once, with its output in that
 * attempt's log. So each task writes `<frame> <attempt>` ($DROVER_ATTEMPT) and prints
 * `frame <frame> attempt <attempt>`, and the figures are:
 *
 * - `runs`: task executions seen (lines in the file; ≥ tasks),
 * - `reexecuted`: frames with more than one line (at-least-once execution at work),
 * - `completedOnce`: tasks with exactly one `task.completed` event,
 * - `duplicates`: tasks accepted more than once (more than one `task.completed`, or the
 *   completed attempt's line more than once in the file) — must be 0,
 * - `lost`: tasks completed without their completed attempt's line in the file, plus
 *   completed tasks whose attempt log lacks its output line (`logsLost`) — must be 0,
 * - `stuck`: tasks not completed when the run ended — must be 0.
 */

export interface ChaosOptions {
  backend: 'sqlite' | 'postgres';
  tasks: number;
  workers: number;
  /** Workers SIGKILLed (a random one each time) and started again. */
  workerKills: number;
  /** Manager SIGKILLed and started again on the same port and store. */
  managerRestarts: number;
  /** PostgreSQL restarts (postgres backend only). */
  postgresRestarts?: number;
  /** Give up waiting for the tasks after this long. */
  timeoutMs: number;
  log?: (line: string) => void;
}

export interface ChaosResult {
  backend: string;
  runs: number;
  kills: number;
  tasks: number;
  completedOnce: number;
  duplicates: number;
  lost: number;
  stuck: number;
  reexecuted: number;
  logsLost: number;
  faults: { workerKills: number; managerRestarts: number; postgresRestarts: number };
  seconds: number;
}

const JOBS = 4;
/** Short leases: a killed worker's task comes back within seconds. */
const MANAGER_TIMINGS = [
  '--heartbeat-ms',
  '300',
  '--lease-ttl-ms',
  '3000',
  '--stall-after-ms',
  '3000',
  '--house-keeping-ms',
  '200',
];
/** The task: print, then append `<frame> <attempt>`; the frame is an argument, never code. */
const APPEND = [
  '-c',
  'echo "frame $1 attempt $DROVER_ATTEMPT"; echo "$1 $DROVER_ATTEMPT" >> "$2"',
  'append',
];

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), `drover-chaos-${o.backend}-`));
  const out = join(dir, 'frames.txt');
  writeFileSync(out, '');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let db: string | undefined;
  let dbName: string | undefined;
  if (o.backend === 'postgres') {
    dbName = `drover_chaos_${randomBytes(4).toString('hex')}`;
    await createDatabase(TEST_POSTGRES_URL, dbName);
    db = databaseUrl(TEST_POSTGRES_URL, dbName);
  }

  const procs = new Set<ChildProcess>();
  const workers = new Map<string, ChildProcess>();
  let manager: ChildProcess | undefined;
  const faults = { workerKills: 0, managerRestarts: 0, postgresRestarts: 0 };

  const startManagerProcess = async () => {
    const args = [CLI, 'manager', '--data', dir, '--port', String(port), ...MANAGER_TIMINGS];
    if (db) args.push('--db', db);
    args.push('--log-level', 'error');
    manager = await listening(
      spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] }),
    );
    procs.add(manager);
  };
  let workerToken = '';
  const startWorkerProcess = (name: string) => {
    const child = spawn(
      process.execPath,
      [
        CLI,
        'worker',
        '--manager',
        url,
        '--name',
        name,
        '--spool-dir',
        join(dir, `spool-${name}`),
        '--log-level',
        'error',
      ],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, DROVER_TOKEN: workerToken },
      },
    );
    procs.add(child);
    workers.set(name, child);
  };

  try {
    await startManagerProcess();
    const admin = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
    const client = new DroverClient({ url, token: admin, timeoutMs: 10_000 });
    workerToken = (await client.createToken('chaos-workers', 'worker')).token;

    const per = Math.ceil(o.tasks / JOBS);
    const jobIds: string[] = [];
    for (let k = 0, first = 1; first <= o.tasks; k++, first += per) {
      const last = Math.min(o.tasks, first + per - 1);
      const job = await client.submitJob({
        name: `chaos ${k}`,
        plugin: 'CommandLine',
        pluginInfo: { executable: '/bin/sh', arguments: [...APPEND, '{frame}', out] },
        frames: `${first}-${last}`,
        // Kills are not the task's fault, but a requeue after a lost lease is not an error
        // either; retries only guard against a task failing because its worker died.
        taskRetries: 5,
      });
      jobIds.push(job.id);
    }
    for (let i = 0; i < o.workers; i++) startWorkerProcess(`chaos-${i}`);

    // The faults: fault i happens once 0.8·(i+1)/(n+1) of the tasks are done.
    const plan: Array<'worker' | 'manager' | 'postgres'> = [
      ...Array<'worker'>(o.workerKills).fill('worker'),
      ...Array<'manager'>(o.managerRestarts).fill('manager'),
      ...Array<'postgres'>(o.backend === 'postgres' ? (o.postgresRestarts ?? 0) : 0).fill(
        'postgres',
      ),
    ];
    shuffle(plan);
    const completed = async () => {
      let n = 0;
      for (const id of jobIds) n += (await client.getJob(id)).counts.completed;
      return n;
    };
    const deadline = started + o.timeoutMs;
    let done = 0;
    let next = 0;
    while (Date.now() < deadline) {
      try {
        done = await completed();
      } catch {
        // the manager (or PostgreSQL) is down for a moment
      }
      // Faults are spread over the first 80% of the run. A fault that falls due is applied
      // even when the last tasks finished in the same poll (PostgreSQL coming back can
      // complete a burst at once), so every run takes every planned fault.
      const due = next < plan.length && done >= ((next + 1) / (plan.length + 1)) * 0.8 * o.tasks;
      if (!due && done >= o.tasks) break;
      if (due) {
        const fault = plan[next++]!;
        log(`chaos: ${fault} fault at ${done}/${o.tasks} completed`);
        if (fault === 'worker') {
          const names = [...workers.keys()];
          const name = names[Math.floor(Math.random() * names.length)]!;
          await kill(workers.get(name)!);
          startWorkerProcess(name);
          faults.workerKills++;
        } else if (fault === 'manager') {
          await kill(manager!);
          await sleep(300);
          await startManagerProcess();
          faults.managerRestarts++;
        } else {
          restartPostgres();
          faults.postgresRestarts++;
        }
        continue;
      }
      await sleep(200);
    }

    // Let the store settle (a last report in flight), then count.
    await sleep(500);
    const tasks: Task[] = [];
    for (const id of jobIds) {
      for (let offset = 0; ; offset += 1000) {
        const page = await client.listTasks(id, { offset, limit: 1000 });
        tasks.push(...page);
        if (page.length < 1000) break;
      }
    }
    const completions = new Map<string, number>();
    for (const id of jobIds) {
      for (let after = 0; ;) {
        const events = await client.listEvents({
          after,
          job: id,
          type: 'task.completed',
          limit: 1000,
        });
        if (events.length === 0) break;
        for (const e of events) {
          const key = `${id}:${e.taskIndex}`;
          completions.set(key, (completions.get(key) ?? 0) + 1);
        }
        after = events.at(-1)!.seq;
      }
    }
    const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean);
    const linesOf = new Map<string, number>();
    const framesSeen = new Map<number, number>();
    for (const line of lines) {
      linesOf.set(line, (linesOf.get(line) ?? 0) + 1);
      const frame = Number(line.split(' ')[0]);
      framesSeen.set(frame, (framesSeen.get(frame) ?? 0) + 1);
    }

    let completedOnce = 0;
    let duplicates = 0;
    let lost = 0;
    let stuck = 0;
    let logsLost = 0;
    for (const t of tasks) {
      const frame = t.frames[0]!;
      const n = completions.get(`${t.jobId}:${t.index}`) ?? 0;
      if (n === 1) completedOnce++;
      if (t.state !== 'completed') {
        stuck++;
        continue;
      }
      const accepted = linesOf.get(`${frame} ${t.attempt}`) ?? 0;
      if (n > 1 || accepted > 1) duplicates++;
      if (accepted === 0) lost++;
      const text = await attemptLog(client, t.jobId, t.index, t.attempt);
      if (!text.includes(`frame ${frame} attempt ${t.attempt}\n`)) logsLost++;
    }
    const reexecuted = [...framesSeen.values()].filter((n) => n > 1).length;
    return {
      backend: o.backend,
      runs: lines.length,
      kills: faults.workerKills + faults.managerRestarts + faults.postgresRestarts,
      tasks: tasks.length,
      completedOnce,
      duplicates,
      lost: lost + logsLost,
      stuck,
      reexecuted,
      logsLost,
      faults,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    };
  } finally {
    await Promise.all([...procs].map((p) => kill(p)));
    if (dbName) await dropDatabase(TEST_POSTGRES_URL, dbName).catch(() => undefined);
  }
}

async function attemptLog(
  client: DroverClient,
  job: string,
  index: number,
  attempt: number,
): Promise<string> {
  let text = '';
  for (let after = 0; ;) {
    const { chunks } = await client.taskLog(job, index, { attempt, after, limit: 500 });
    if (chunks.length === 0) return text;
    text += chunks.map((c) => c.text).join('');
    after = chunks.at(-1)!.seq;
  }
}

/** Resolves once the manager process prints its address (fails if it exits first). */
function listening(proc: ChildProcess): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    let err = '';
    proc.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
      if (/listening on http/.test(err)) resolve(proc);
    });
    proc.once('exit', (code) => reject(new Error(`manager exited with ${code}: ${err}`)));
  });
}

function kill(proc: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return done();
    proc.once('exit', () => done());
    proc.kill('SIGKILL');
  });
}

function restartPostgres(): void {
  const version = execFileSync('ls', ['/etc/postgresql']).toString().trim().split('\n')[0]!;
  execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'restart'], {
    stdio: 'ignore',
  });
}

/** A port free right now (the manager keeps it across its restarts). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
