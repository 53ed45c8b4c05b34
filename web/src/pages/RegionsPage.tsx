/**
 * Regions: per region, its workers by state, what renders there, and its GFS site's
 * replication lag (`GET /regions/replication`, polled: the GFS changes without farm events).
 */
import { useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, type ReplicationReply, type Worker } from '../api.js';
import { ErrorNote, PageHeader } from '../components/bits.js';
import { duration } from '../format.js';
import { useWorkers } from '../stores.js';

const REPLICATION_POLL_MS = 2_000;

/** The replication report, polled while the page is open; undefined until the first reply. */
function useReplication(): ReplicationReply | undefined {
  const [reply, setReply] = useState<ReplicationReply>();
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = () => {
      api
        .replication()
        .then(
          (r) => {
            if (!stopped) setReply(r);
          },
          (error: unknown) => {
            if (!stopped) {
              const note = error instanceof Error ? error.message : String(error);
              setReply({ gfs: '', sites: null, note });
            }
          },
        )
        .finally(() => {
          if (!stopped) timer = setTimeout(poll, REPLICATION_POLL_MS);
        });
    };
    poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);
  return reply;
}

function lagText(reply: ReplicationReply | undefined, region: string): string {
  if (!reply) return '…';
  if (!reply.sites) return 'unknown';
  const site = reply.sites.find((s) => s.site === region);
  if (!site) return `not a ${reply.gfs} GFS site`;
  if (site.pending === 0) return 'caught up';
  return `${duration(site.lagMs)} behind (${site.pending} pending)`;
}

function lastSyncText(reply: ReplicationReply | undefined, region: string): string {
  const site = reply?.sites?.find((s) => s.site === region);
  return site?.lastDelayMs == null ? '—' : `${duration(site.lastDelayMs)} after the change`;
}

interface RegionRow {
  region: string;
  workers: number;
  idle: number;
  rendering: number;
  offline: number;
  stalled: number;
  disabled: number;
  slots: number;
  tasks: number;
  jobs: number;
}

function summarize(workers: Worker[]): RegionRow[] {
  const by = new Map<string, Worker[]>();
  for (const w of workers) by.set(w.region, [...(by.get(w.region) ?? []), w]);
  return [...by.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([region, ws]) => {
      const count = (s: Worker['state']) => ws.filter((w) => w.state === s).length;
      const running = ws.flatMap((w) => w.runningTasks);
      return {
        region,
        workers: ws.length,
        idle: count('idle'),
        rendering: count('rendering'),
        offline: count('offline'),
        stalled: count('stalled'),
        disabled: count('disabled'),
        slots: ws
          .filter((w) => w.state === 'idle' || w.state === 'rendering')
          .reduce((n, w) => n + w.slots, 0),
        tasks: running.length,
        jobs: new Set(running.map((k) => k.slice(0, k.lastIndexOf(':')))).size,
      };
    });
}

export function RegionsPage(): ReactNode {
  const { items, loaded, error } = useWorkers();
  const rows = useMemo(() => summarize(items), [items]);
  const replication = useReplication();
  return (
    <div className="page">
      <PageHeader title="Regions">
        <span className="count">{loaded ? `${rows.length} regions` : 'loading…'}</span>
      </PageHeader>
      <ErrorNote error={error} />
      {replication && !replication.sites && (
        <p className="muted" data-testid="replication-note">
          GFS replication lag: {replication.note}
        </p>
      )}
      <div className="region-cards">
        {rows.map((r) => (
          <section key={r.region} className="panel region-card" aria-label={`Region ${r.region}`}>
            <h2>{r.region}</h2>
            <div className="stat-row">
              <div className="stat state-idle">
                <b>{r.idle}</b> idle
              </div>
              <div className="stat state-rendering">
                <b>{r.rendering}</b> rendering
              </div>
              <div className="stat state-offline">
                <b>{r.offline}</b> offline
              </div>
              <div className="stat state-stalled">
                <b>{r.stalled}</b> stalled
              </div>
              <div className="stat state-disabled">
                <b>{r.disabled}</b> disabled
              </div>
            </div>
            <table className="kv">
              <tbody>
                <tr>
                  <th>workers</th>
                  <td>{r.workers}</td>
                </tr>
                <tr>
                  <th>slots online</th>
                  <td>{r.slots}</td>
                </tr>
                <tr>
                  <th>tasks rendering</th>
                  <td data-testid={`tasks-rendering-${r.region}`}>{r.tasks}</td>
                </tr>
                <tr>
                  <th>jobs rendering</th>
                  <td>{r.jobs}</td>
                </tr>
                <tr>
                  <th>GFS replication lag</th>
                  <td data-testid={`replication-lag-${r.region}`}>
                    {lagText(replication, r.region)}
                  </td>
                </tr>
                <tr>
                  <th>last replication</th>
                  <td>{lastSyncText(replication, r.region)}</td>
                </tr>
              </tbody>
            </table>
          </section>
        ))}
      </div>
      {loaded && rows.length === 0 && <p className="muted">No workers have registered yet.</p>}
    </div>
  );
}
