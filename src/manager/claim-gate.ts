/**
 * At most `limit` claims run in the store at once; the rest wait here, first come first
 * served, with no timeout (the worker's own request timeout bounds the wait).
 *
 * Why: a PostgreSQL manager has a pool of 16 connections and may have 1,000 workers. When
 * work appears, every long-polling claim wakes at once; without this gate each one asks the
 * pool for a connection, and those that wait past the pool's connection timeout (10 s) fail
 * with 503 — while heartbeats, reports and the monitor's reads queue behind the claims in the
 * same pool. With it the pool's queue stays short: claims queue here, in memory, where a wait
 * costs nothing, and the pool keeps connections free for everything else.
 *
 * A long-poll holds no connection while it waits for work (`Farm.work`: each look at the
 * store is its own short transaction); this gate is about the looks themselves.
 */
export class ClaimGate {
  private running = 0;
  private readonly queue: Array<() => void> = [];

  /** `limit`: claims in the store at once (`Infinity`: no gate). */
  constructor(readonly limit: number) {}

  /** Claims waiting for a turn now. */
  get queued(): number {
    return this.queue.length;
  }

  /** Runs `fn` once fewer than `limit` others run. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) {
      await new Promise<void>((resolve) => this.queue.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next in line (running stays the same), or free it.
      const next = this.queue.shift();
      if (next) next();
      else this.running--;
    }
  }
}

/**
 * The gate's size for a store: a PostgreSQL pool's size less a few connections left for
 * everything that is not a claim (heartbeats, log appends, reads, house keeping, plugins);
 * SQLite runs one statement at a time anyway and needs no gate.
 */
export function claimGateSize(poolMax: number | undefined): number {
  if (poolMax === undefined) return Infinity;
  return Math.max(1, poolMax - Math.min(4, Math.floor(poolMax / 4)));
}
