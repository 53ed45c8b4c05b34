import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TaskReport } from '../core/worker-protocol.js';
import type { PluginHost } from '../events/host.js';
import { MAX_PAGE, type Store } from '../store/contract.js';
import { postgresPool } from '../store/postgres/index.js';

/**
 * The manager's metrics, served at `GET /metrics` in the Prometheus text format.
 *
 * The hot path (every claim and report) only moves counters and histograms: a few additions
 * per request, no I/O. Everything that needs the store — queued tasks, workers by state,
 * each event consumer's lag — is read when scraped, with bounded queries (at most
 * `QUEUE_PAGES` pages of active jobs, one worker list, one cursor per plugin), and a scrape
 * within `GAUGE_REUSE_MS` of the last one (several Prometheus servers, a dashboard's
 * refresh) reuses its figures instead of asking the store again.
 *
 * Each manager has its own registry: several managers in one process (tests) never share
 * series. Figures are this manager's own; with several managers on one database, the
 * store-wide gauges (queue, workers, lag) are the same on each and the counters add up.
 */

/** Claims, store calls and house keeping: 1 ms to 10 s. */
const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Waits for a pooled connection: most are 0, the ones that matter are long. */
const POOL_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];
/** Active jobs read per scrape for the queue gauge, in pages of `MAX_PAGE`. */
const QUEUE_PAGES = 10;
const GAUGE_REUSE_MS = 1000;

/** What the metrics read from the manager at scrape time. */
export interface MetricsSource {
  readonly store: Store;
  readonly plugins: PluginHost | undefined;
  /** Long-polling claims waiting for work now. */
  readonly waitingClaims: number;
  /** Claims waiting for their turn at the store (see `Farm`'s claim gate). */
  readonly queuedClaims: number;
}

export type HouseKeepingPart = 'leases' | 'purge';

export class FarmMetrics {
  readonly registry = new Registry();
  private readonly claims: Counter<'result'>;
  private readonly reports: Counter<'outcome'>;
  private readonly claimSeconds: Histogram;
  private readonly houseKeepingSeconds: Histogram<'part'>;
  private readonly queued: Gauge<'pool' | 'region'>;
  private readonly queueTruncated: Gauge;
  private readonly workers: Gauge<'state' | 'region'>;
  private readonly eventHead: Gauge;
  private readonly eventLag: Gauge<'consumer'>;
  private readonly longPolls: Gauge;
  private readonly claimQueue: Gauge;
  private readonly poolConnections: Gauge<'state'>;
  private readonly poolSize: Gauge;
  private refreshing: Promise<void> | undefined;
  private refreshedAt = -Infinity;
  private processMetrics = false;

  constructor(private readonly source: MetricsSource) {
    const registers = [this.registry];
    this.claims = new Counter({
      name: 'drover_claims_total',
      help: 'Claims answered by the store for the worker protocol, by result (a task or none)',
      labelNames: ['result'],
      registers,
    });
    this.reports = new Counter({
      name: 'drover_task_reports_total',
      help: 'Task reports from workers, by outcome (completed, failed, handed-back; refused: the lease was lost)',
      labelNames: ['outcome'],
      registers,
    });
    for (const result of ['task', 'none']) this.claims.labels(result).inc(0);
    for (const outcome of ['completed', 'failed', 'handed-back', 'refused'])
      this.reports.labels(outcome).inc(0);
    this.claimSeconds = new Histogram({
      name: 'drover_claim_seconds',
      help: 'Time of each store call that handed a worker a task (its report, the claim, and any wait for a connection; not the long-poll wait for work to appear)',
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.houseKeepingSeconds = new Histogram({
      name: 'drover_house_keeping_seconds',
      help: 'Duration of each house-keeping step: leases (expired leases, silent workers), purge (deleted jobs, abandoned creations, expired idempotency keys)',
      labelNames: ['part'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    // Every series from the start, at 0: rate() needs the zero a scraper saw first.
    for (const part of ['leases', 'purge'] as const) this.houseKeepingSeconds.zero({ part });
    this.queued = new Gauge({
      name: 'drover_queued_tasks',
      help: 'Queued tasks of queued and rendering jobs, by pool and region (a job that may render in several regions counts in each; "any": no region named)',
      labelNames: ['pool', 'region'],
      registers,
    });
    this.queueTruncated = new Gauge({
      name: 'drover_queued_tasks_truncated',
      help: `1 when more active jobs exist than a scrape reads (${QUEUE_PAGES * MAX_PAGE}): drover_queued_tasks then counts the newest ones only`,
      registers,
    });
    this.workers = new Gauge({
      name: 'drover_workers',
      help: 'Registered workers, by state and region',
      labelNames: ['state', 'region'],
      registers,
    });
    this.eventHead = new Gauge({
      name: 'drover_event_log_head',
      help: 'The sequence number of the newest event in the event log',
      registers,
    });
    this.eventLag = new Gauge({
      name: 'drover_event_log_lag_events',
      help: 'Events a consumer (an event plugin) has not processed yet: the log head minus its cursor',
      labelNames: ['consumer'],
      registers,
    });
    this.longPolls = new Gauge({
      name: 'drover_long_polls_waiting',
      help: 'Workers long-polling this manager for work now (they hold no database connection)',
      registers,
    });
    this.claimQueue = new Gauge({
      name: 'drover_claims_queued',
      help: "Claims waiting for a turn at the store (the manager lets at most its pool's share run at once)",
      registers,
    });
    const pool = postgresPool(source.store);
    this.poolConnections = new Gauge({
      name: 'drover_store_pool_connections',
      help: 'PostgreSQL pool: connections open (total), idle, and callers waiting for one (waiting)',
      labelNames: ['state'],
      registers,
    });
    this.poolSize = new Gauge({
      name: 'drover_store_pool_max',
      help: 'PostgreSQL pool: its size',
      registers,
    });
    if (pool) {
      const acquire = new Histogram({
        name: 'drover_store_pool_acquire_seconds',
        help: 'PostgreSQL pool: time to get a connection (waiting for a free one, or opening one)',
        buckets: POOL_BUCKETS,
        registers,
      });
      pool.onAcquire((s) => acquire.observe(s));
    }
  }

  // ── the hot path: counters only ──

  /** One store call of the worker protocol (`store.work`): its report and its claim. */
  work(
    report: TaskReport | undefined,
    result: { reportError: unknown; task: unknown },
    claimed: boolean,
    startedAt: number,
  ): void {
    if (report) this.report(report.outcome, result.reportError !== null);
    if (!claimed) return;
    if (result.task) {
      this.claims.labels('task').inc();
      this.claimSeconds.observe((performance.now() - startedAt) / 1000);
    } else {
      this.claims.labels('none').inc();
    }
  }

  /** A task report (`refused`: the lease was lost, nothing changed). */
  report(outcome: TaskReport['outcome'], refused: boolean): void {
    this.reports.labels(refused ? 'refused' : outcome).inc();
  }

  /** Runs one house-keeping step, timing it. */
  async time<T>(part: HouseKeepingPart, step: () => Promise<T>): Promise<T> {
    const end = this.houseKeepingSeconds.startTimer({ part });
    try {
      return await step();
    } finally {
      end();
    }
  }

  // ── scraping ──

  /** The exposition text (`registry.contentType`), gauges read from the store first. */
  async scrape(): Promise<string> {
    // Node's process metrics from the first scrape on: they sample the event loop on a timer,
    // which a manager nobody scrapes (and the many farms of a test run) need not pay for.
    if (!this.processMetrics) {
      collectDefaultMetrics({ register: this.registry });
      this.processMetrics = true;
    }
    if (performance.now() - this.refreshedAt >= GAUGE_REUSE_MS) {
      this.refreshing ??= this.refresh().finally(() => {
        this.refreshing = undefined;
        this.refreshedAt = performance.now();
      });
      await this.refreshing;
    }
    return this.registry.metrics();
  }

  private async refresh(): Promise<void> {
    const { store } = this.source;
    this.longPolls.set(this.source.waitingClaims);
    this.claimQueue.set(this.source.queuedClaims);
    const pool = postgresPool(store);
    if (pool) {
      this.poolSize.set(pool.max);
      this.poolConnections.labels('total').set(pool.total);
      this.poolConnections.labels('idle').set(pool.idle);
      this.poolConnections.labels('waiting').set(pool.waiting);
    }
    await Promise.all([this.refreshQueue(store), this.refreshWorkers(store), this.refreshLag()]);
  }

  private async refreshQueue(store: Store): Promise<void> {
    const depth = new Map<string, { pool: string; region: string; tasks: number }>();
    let truncated = false;
    for (let page = 0; ; page++) {
      const jobs = await store.listJobs({
        states: ['queued', 'rendering'],
        limit: MAX_PAGE,
        offset: page * MAX_PAGE,
      });
      for (const job of jobs) {
        for (const region of job.regions.length > 0 ? job.regions : ['any']) {
          const key = `${job.pool}\u0000${region}`;
          const d = depth.get(key) ?? { pool: job.pool, region, tasks: 0 };
          d.tasks += job.counts.queued;
          depth.set(key, d);
        }
      }
      if (jobs.length < MAX_PAGE) break;
      if (page + 1 >= QUEUE_PAGES) {
        truncated = true;
        break;
      }
    }
    this.queued.reset();
    for (const d of depth.values()) this.queued.labels(d.pool, d.region).set(d.tasks);
    this.queueTruncated.set(truncated ? 1 : 0);
  }

  private async refreshWorkers(store: Store): Promise<void> {
    const counts = new Map<string, { state: string; region: string; n: number }>();
    for (const w of await store.listWorkers()) {
      const key = `${w.state}\u0000${w.region}`;
      const c = counts.get(key) ?? { state: w.state, region: w.region, n: 0 };
      c.n++;
      counts.set(key, c);
    }
    this.workers.reset();
    for (const c of counts.values()) this.workers.labels(c.state, c.region).set(c.n);
  }

  private async refreshLag(): Promise<void> {
    const { store, plugins } = this.source;
    const head = await store.latestEventSeq();
    this.eventHead.set(head);
    this.eventLag.reset();
    for (const p of plugins?.list() ?? []) {
      if (p.state === 'disabled') continue;
      const consumer = `plugin:${p.name}`;
      const cursor = (await store.fetchCursor(consumer)) ?? 0;
      this.eventLag.labels(consumer).set(Math.max(0, head - cursor));
    }
  }
}
