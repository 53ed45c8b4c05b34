import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { SwarmPlan, SwarmResult } from '../swarm.js';

const SWARM = join(import.meta.dirname, '..', 'swarm.js');

/**
 * Runs `plan.workers` simulated workers split over `processes` child processes: registers
 * them all, starts them together and merges their results.
 */
export async function runSwarm(plan: SwarmPlan, processes: number): Promise<SwarmResult> {
  const n = Math.max(1, Math.min(processes, plan.workers));
  const children: ChildProcess[] = [];
  const replies: Array<{ ready: Promise<unknown>; result: Promise<unknown> }> = [];
  for (let c = 0; c < n; c++) {
    const count = Math.floor(plan.workers / n) + (c < plan.workers % n ? 1 : 0);
    const child = fork(SWARM, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    const waiting = new Map<string, (v: unknown) => void>();
    const failed = new Promise<never>((_, reject) => {
      child.on('message', (m: { type: string; message?: string; result?: unknown }) => {
        if (m.type === 'failed') reject(new Error(`swarm process: ${m.message}`));
        waiting.get(m.type)?.(m.result);
      });
      child.once('exit', (code) => {
        // Rejects nothing once the result is in; otherwise says the process died without it.
        reject(new Error(`swarm process exited (${code}) without a result`));
      });
    });
    failed.catch(() => undefined);
    const expect = (type: string) =>
      Promise.race([new Promise((done) => waiting.set(type, done)), failed]);
    replies.push({ ready: expect('ready'), result: expect('result') });
    child.send({ type: 'plan', plan: { ...plan, workers: count, prefix: `${plan.prefix}${c}` } });
  }
  try {
    await Promise.all(replies.map((r) => r.ready));
    for (const child of children) child.send({ type: 'go' });
    const results = (await Promise.all(replies.map((r) => r.result))) as SwarmResult[];
    return {
      cycles: results.reduce((s, r) => s + r.cycles, 0),
      claimLatencies: results.flatMap((r) => r.claimLatencies),
      heartbeatLatencies: results.flatMap((r) => r.heartbeatLatencies),
      errors: results.reduce((s, r) => s + r.errors, 0),
      firstError: results.find((r) => r.firstError)?.firstError,
    };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill();
  }
}
