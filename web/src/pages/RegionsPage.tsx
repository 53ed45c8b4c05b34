/**
 * Regions: per region, its workers by state and what renders there. The GFS site's
 * replication lag is not shown: the manager has no cheap way to read it yet (it lives in the
 * GFS adapter of the gfs-sync plugin, polled per folder job).
 */
import { useMemo, type ReactNode } from 'react';
import type { Worker } from '../api.js';
import { ErrorNote, PageHeader } from '../components/bits.js';
import { useWorkers } from '../stores.js';

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
  return (
    <div className="page">
      <PageHeader title="Regions">
        <span className="count">{loaded ? `${rows.length} regions` : 'loading…'}</span>
      </PageHeader>
      <ErrorNote error={error} />
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
              </tbody>
            </table>
          </section>
        ))}
      </div>
      {loaded && rows.length === 0 && <p className="muted">No workers have registered yet.</p>}
    </div>
  );
}
