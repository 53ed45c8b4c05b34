/** What the command line chose, shared by every scenario. */
export interface BenchConfig {
  /** A short smoke run (CI): small sizes, short windows; figures are not meaningful. */
  quick: boolean;
  /** Whether PostgreSQL rows are measured (the server answered). */
  postgres: boolean;
  /** A scratch folder for SQLite files and manager data, removed at the end. */
  tmp: string;
  /** Child processes running simulated workers. */
  swarmProcesses: number;
}

/** Seconds of warm-up and of measurement for a throughput window. */
export function windowMs(c: BenchConfig): { warmupMs: number; measureMs: number } {
  return c.quick ? { warmupMs: 500, measureMs: 1500 } : { warmupMs: 2000, measureMs: 10_000 };
}
