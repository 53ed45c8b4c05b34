/** Workers, grouped by region: state, current task and its progress, heartbeat, placement. */
import { createColumnHelper } from '@tanstack/react-table';
import { useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, type Task, type Worker } from '../api.js';
import { DataTable } from '../components/DataTable.js';
import { ErrorNote, PageHeader, Progress, StateBadge } from '../components/bits.js';
import { ago, frameRange } from '../format.js';
import { Link } from '../router.js';
import { useWorkers } from '../stores.js';

/** A task a worker holds, with its job's name, as the page shows it. */
export interface RunningTask {
  key: string;
  jobId: string;
  jobName: string;
  task: Task | undefined;
}

/** Re-renders every `ms` (for "last seen … ago"). */
export function useNow(ms: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(t);
  }, [ms]);
  return now;
}

/** The tasks the workers hold (`jobId:index`), read whenever the worker list changes. */
export function useRunningTasks(workers: Worker[]): Map<string, RunningTask> {
  const [running, setRunning] = useState(new Map<string, RunningTask>());
  const keys = workers
    .flatMap((w) => w.runningTasks)
    .slice(0, 200)
    .sort()
    .join(' ');
  useEffect(() => {
    let stopped = false;
    const list = keys ? keys.split(' ') : [];
    const jobNames = new Map<string, Promise<string>>();
    const nameOf = (id: string) => {
      let p = jobNames.get(id);
      if (!p) {
        p = api.getJob(id).then(
          (j) => j.name,
          () => id,
        );
        jobNames.set(id, p);
      }
      return p;
    };
    void Promise.all(
      list.map(async (key) => {
        const sep = key.lastIndexOf(':');
        const jobId = key.slice(0, sep);
        const index = Number(key.slice(sep + 1));
        const [jobName, tasks] = await Promise.all([
          nameOf(jobId),
          api.listTasks(jobId, index, 1).catch(() => [] as Task[]),
        ]);
        return { key, jobId, jobName, task: tasks[0] } satisfies RunningTask;
      }),
    ).then((found) => {
      if (!stopped) setRunning(new Map(found.map((r) => [r.key, r])));
    });
    return () => {
      stopped = true;
    };
    // `workers` changes on every refresh (heartbeats); re-read progress with it.
  }, [keys, workers]);
  return running;
}

const col = createColumnHelper<Worker>();

export function WorkersPage(): ReactNode {
  const { items, loaded, error } = useWorkers();
  const running = useRunningTasks(items);
  const now = useNow(1000);
  const [note, setNote] = useState<string | null>(null);

  const regions = useMemo(() => {
    const by = new Map<string, Worker[]>();
    for (const w of items) by.set(w.region, [...(by.get(w.region) ?? []), w]);
    return [...by.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [items]);

  const columns = useMemo(() => {
    const toggle = async (w: Worker) => {
      try {
        await api.setWorkerEnabled(w.name, !w.enabled);
        setNote(null);
      } catch (err) {
        setNote(err instanceof Error ? err.message : String(err));
      }
    };
    return [
      col.accessor('name', { header: 'Name', size: 140 }),
      col.accessor('state', {
        header: 'State',
        size: 100,
        cell: (c) => <StateBadge state={c.getValue()} />,
      }),
      col.accessor('enabled', {
        header: 'Enabled',
        size: 80,
        cell: (c) => (
          <button
            className="small"
            onClick={() => void toggle(c.row.original)}
            aria-label={`${c.getValue() ? 'Disable' : 'Enable'} ${c.row.original.name}`}
          >
            {c.getValue() ? 'Disable' : 'Enable'}
          </button>
        ),
      }),
      col.accessor((w) => w.runningTasks.join(' '), {
        id: 'task',
        header: 'Current task',
        size: 260,
        cell: (c) =>
          c.row.original.runningTasks.map((key) => {
            const r = running.get(key);
            const [jobId] = key.split(':');
            return (
              <span key={key} className="task-ref">
                <Link to={`/jobs/${jobId}`}>{r?.jobName ?? jobId}</Link>
                {r?.task && (
                  <span className="muted">
                    {' '}
                    #{r.task.index} fr {frameRange(r.task.frames)}
                  </span>
                )}
              </span>
            );
          }),
      }),
      col.accessor(
        (w) => {
          const t = w.runningTasks[0];
          return t ? (running.get(t)?.task?.progress ?? 0) : -1;
        },
        {
          id: 'progress',
          header: 'Progress',
          size: 110,
          cell: (c) =>
            c.getValue<number>() >= 0 ? <Progress done={c.getValue<number>()} total={100} /> : '',
        },
      ),
      col.accessor('lastSeenAt', {
        header: 'Last heartbeat',
        size: 120,
        cell: (c) => <span className="num">{ago(c.getValue(), now)}</span>,
      }),
      col.accessor((w) => w.pools.join(', '), { id: 'pools', header: 'Pools', size: 120 }),
      col.accessor((w) => w.groups.join(', '), { id: 'groups', header: 'Groups', size: 100 }),
      col.accessor('slots', { header: 'Slots', size: 50 }),
      col.accessor((w) => w.capabilities.cpus, { id: 'cpus', header: 'CPUs', size: 50 }),
      col.accessor((w) => w.capabilities.memoryMb, {
        id: 'memory',
        header: 'Memory',
        size: 80,
        cell: (c) => `${(c.getValue<number>() / 1024).toFixed(1)} GiB`,
      }),
      col.accessor((w) => w.capabilities.gpus, { id: 'gpus', header: 'GPUs', size: 50 }),
      col.accessor((w) => w.capabilities.os, { id: 'os', header: 'OS', size: 70 }),
      col.accessor('version', { header: 'Version', size: 70 }),
    ];
  }, [running, now]);

  return (
    <div className="page">
      <PageHeader title="Workers">
        <span className="count">
          {loaded
            ? `${items.length} workers in ${regions.length} region${regions.length === 1 ? '' : 's'}`
            : 'loading…'}
        </span>
      </PageHeader>
      <ErrorNote error={note ?? error} />
      {loaded && items.length === 0 && (
        <p className="muted">No workers yet. Start one with `drover worker`.</p>
      )}
      {regions.map(([region, workers]) => (
        <section key={region} className="region-group" aria-label={`Region ${region}`}>
          <h2>
            {region}{' '}
            <span className="muted">
              {workers.length} worker{workers.length === 1 ? '' : 's'} ·{' '}
              {workers.filter((w) => w.state === 'rendering').length} rendering ·{' '}
              {workers.filter((w) => w.state === 'idle').length} idle
            </span>
          </h2>
          <DataTable
            label={`Workers in ${region}`}
            data={workers}
            columns={columns}
            getRowId={(w) => w.name}
            initialSorting={[{ id: 'name', desc: false }]}
            rowClassName={(w) => `row-${w.state}`}
            maxHeight={420}
          />
        </section>
      ))}
    </div>
  );
}
