/**
 * A child process running many simulated workers against real managers over keep-alive HTTP
 * (the real worker protocol: register, `POST /workers/:name/work` with `{report, waitMs}`,
 * heartbeats). The parent sends a plan, waits for `ready` from every child, sends `go` to all
 * at once and collects one `result` each. Spawned by `lib/swarm-control.ts`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { JsonClient } from './lib/http.js';

export interface SwarmPlan {
  /** `dispatch`: claim and complete zero-work tasks back to back (scenario 2).
   *  `farm`: render for `renderMs`, heartbeat every `heartbeatMs` (scenario 5). */
  mode: 'dispatch' | 'farm';
  /** Managers; worker i talks to `urls[i % urls.length]`. */
  urls: string[];
  token: string;
  /** Worker names are `${prefix}-${i}`. */
  prefix: string;
  workers: number;
  warmupMs: number;
  measureMs: number;
  /** Long-poll wait of a claim that finds no work. */
  waitMs: number;
  heartbeatMs: number;
  renderMs: [number, number];
}

export interface SwarmResult {
  /** Completions accepted inside the measured window. */
  cycles: number;
  /** Round trips (report + claim) that returned a task inside the window, in ms. */
  claimLatencies: number[];
  heartbeatLatencies: number[];
  /** Requests that failed (network or non-2xx) or reports refused (lease lost). */
  errors: number;
  firstError: string | undefined;
}

type Msg = { type: 'plan'; plan: SwarmPlan } | { type: 'go' };

interface Assignment {
  lease: string;
}
interface WorkReply {
  reportError: { code: string; message: string } | null;
  task: Assignment | null;
}

let plan: SwarmPlan | undefined;
let clients: JsonClient[] = [];

function send(message: unknown): void {
  process.send!(message);
}

process.on('message', (m: Msg) => {
  if (m.type === 'plan') {
    plan = m.plan;
    prepare(m.plan).then(
      () => send({ type: 'ready' }),
      (err: unknown) => send({ type: 'failed', message: String(err) }),
    );
  } else if (m.type === 'go') {
    run(plan!).then(
      (result) => {
        for (const c of clients) c.close();
        // Disconnect only once the (large) result has gone through the channel.
        process.send!({ type: 'result', result }, () => process.disconnect());
      },
      (err: unknown) => send({ type: 'failed', message: String(err) }),
    );
  }
});

const names = (p: SwarmPlan) => Array.from({ length: p.workers }, (_, i) => `${p.prefix}-${i}`);
const clientOf = (_p: SwarmPlan, i: number) => clients[i]!;

/**
 * Each worker has its own client (its own keep-alive connection, as a real worker has), and
 * registers on it: by `go` every worker's connection is open, made 32 at a time. Opening them
 * all at `go` instead (the workers shared 2 agents before) made 1,000–10,000 connections at
 * once, which overflowed the manager's listen backlog and cost dozens to hundreds of
 * connection resets per run (BENCHMARKS.md); a farm's workers start over minutes.
 */
async function prepare(p: SwarmPlan): Promise<void> {
  const all = names(p);
  clients = all.map((_, i) => new JsonClient(p.urls[i % p.urls.length]!, p.token));
  let next = 0;
  const registerOne = async () => {
    while (next < all.length) {
      const i = next++;
      await clientOf(p, i).call('POST', '/api/v1/workers/register', {
        name: all[i],
        region: 'bench',
        slots: 1,
        capabilities: { cpus: 1, memoryMb: 1024, os: 'linux' },
      });
    }
  };
  await Promise.all(Array.from({ length: 32 }, registerOne));
}

async function run(p: SwarmPlan): Promise<SwarmResult> {
  const all = names(p);
  const go = performance.now();
  // The window opens after the warm-up and — dispatching — not before every worker here has
  // had its first reply: until then the manager is still handing out the first round of
  // claims and no completion can come back. With 1,000 workers and a store that turns them
  // around once in 7–12 s (PostgreSQL, BENCHMARKS.md) a fixed 2 s warm-up measured the first
  // round's tail and counted ≈1 completion/s.
  let from = p.mode === 'dispatch' ? Infinity : go + p.warmupMs;
  let until = from + p.measureMs;
  let firstReplies = 0;
  const firstReply = () => {
    if (++firstReplies < all.length || p.mode !== 'dispatch') return;
    from = Math.max(go + p.warmupMs, performance.now());
    until = from + p.measureMs;
  };
  const inWindow = (t: number) => t >= from && t < until;
  const result: SwarmResult = {
    cycles: 0,
    claimLatencies: [],
    heartbeatLatencies: [],
    errors: 0,
    firstError: undefined,
  };
  const fail = (err: unknown) => {
    result.errors++;
    result.firstError ??= err instanceof Error ? err.message : String(err);
  };

  const loop = async (i: number) => {
    const client = clientOf(p, i);
    const path = `/api/v1/workers/${all[i]}/work`;
    let lease: string | undefined;
    let heartbeats: Promise<void> | undefined;
    let first = true;
    if (p.mode === 'farm')
      heartbeats = heartbeatLoop(p, client, all[i]!, until, () => lease, result);
    while (performance.now() < until) {
      const started = performance.now();
      let reply: WorkReply;
      try {
        reply = await client.call<WorkReply>('POST', path, {
          ...(lease ? { report: { lease, outcome: 'completed' } } : {}),
          waitMs: p.waitMs,
        });
      } catch (err) {
        fail(err);
        lease = undefined;
        if (first) firstReply();
        first = false;
        await sleep(100);
        continue;
      }
      const ended = performance.now();
      if (first) firstReply();
      first = false;
      if (lease && inWindow(ended)) {
        if (reply.reportError) fail(new Error(reply.reportError.message));
        else result.cycles++;
      }
      lease = reply.task?.lease;
      if (reply.task && inWindow(ended)) result.claimLatencies.push(ended - started);
      if (reply.task && p.mode === 'farm') {
        const [lo, hi] = p.renderMs;
        await sleep(
          Math.min(lo + Math.random() * (hi - lo), Math.max(0, until - performance.now())),
        );
      }
    }
    await heartbeats;
  };
  await Promise.all(all.map((_, i) => loop(i)));
  return result;
}

/** Heartbeats at the production interval, starting at a random offset (workers start apart). */
async function heartbeatLoop(
  p: SwarmPlan,
  client: JsonClient,
  name: string,
  until: number,
  lease: () => string | undefined,
  result: SwarmResult,
): Promise<void> {
  const path = `/api/v1/workers/${name}/heartbeat`;
  await sleep(Math.random() * p.heartbeatMs);
  while (performance.now() < until) {
    const started = performance.now();
    const held = lease();
    try {
      await client.call('POST', path, { tasks: held ? [{ lease: held }] : [] });
      const ended = performance.now();
      if (ended >= until - p.measureMs && ended < until) {
        result.heartbeatLatencies.push(ended - started);
      }
    } catch (err) {
      result.errors++;
      result.firstError ??= err instanceof Error ? err.message : String(err);
    }
    const left = until - performance.now();
    if (left <= 0) break;
    await sleep(Math.min(p.heartbeatMs - (performance.now() - started), left));
  }
}
