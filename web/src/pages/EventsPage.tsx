/**
 * The event log, live: the last 1,000 events when the stream opens, then every event as it
 * arrives (the newest 5,000 are kept), filterable by kind, type, job and worker.
 */
import { createColumnHelper } from '@tanstack/react-table';
import { useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, type EventType, type FarmEvent } from '../api.js';
import { DataTable } from '../components/DataTable.js';
import { ErrorNote, PageHeader } from '../components/bits.js';
import { dateTime, time } from '../format.js';
import { eventGroups, eventTypeList, feed, useFeedGeneration, useLiveEvents } from '../live.js';
import { Link } from '../router.js';

const BACKLOG = 1_000;
const KEEP = 5_000;

const col = createColumnHelper<FarmEvent>();
const columns = [
  col.accessor('seq', {
    header: 'Seq',
    size: 70,
    cell: (c) => <span className="num">{c.getValue()}</span>,
  }),
  col.accessor('at', {
    header: 'Time',
    size: 100,
    cell: (c) => (
      <span className="num" title={dateTime(c.getValue())}>
        {time(c.getValue())}
      </span>
    ),
  }),
  col.accessor('type', {
    header: 'Type',
    size: 130,
    cell: (c) => {
      const type = c.getValue<EventType>();
      return <span className={`event-type ev-${eventGroups[type]}`}>{type}</span>;
    },
  }),
  col.accessor('jobId', {
    header: 'Job',
    size: 200,
    cell: (c) => {
      const id = c.getValue();
      return id ? (
        <Link to={`/jobs/${id}`} className="mono">
          {id}
        </Link>
      ) : (
        ''
      );
    },
  }),
  col.accessor('taskIndex', { header: 'Task', size: 50 }),
  col.accessor('worker', { header: 'Worker', size: 120 }),
  col.accessor((e) => JSON.stringify(e.data), {
    id: 'data',
    header: 'Data',
    size: 460,
    enableSorting: false,
    cell: (c) => (
      <span className="mono muted" title={c.getValue<string>()}>
        {c.getValue<string>()}
      </span>
    ),
  }),
];

export function EventsPage(): ReactNode {
  const generation = useFeedGeneration();
  const [events, setEvents] = useState<FarmEvent[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [group, setGroup] = useState('all');
  const [type, setType] = useState<EventType | ''>('');
  const [job, setJob] = useState('');
  const [worker, setWorker] = useState('');
  const [paused, setPaused] = useState(false);

  useEffect(() => {
    if (generation === 0) return;
    let stopped = false;
    const head = feed.lastSeq;
    api.listEvents({ after: Math.max(0, head - BACKLOG), limit: BACKLOG }).then(
      (backlog) => {
        if (stopped) return;
        // Live events that arrived meanwhile are newer than the backlog: keep both, once each.
        setEvents((live) => {
          const last = backlog[backlog.length - 1]?.seq ?? 0;
          return [...backlog, ...live.filter((e) => e.seq > last)].slice(-KEEP);
        });
        setError(null);
      },
      (err: unknown) => setError(err instanceof Error ? err.message : String(err)),
    );
    return () => {
      stopped = true;
    };
  }, [generation]);

  useLiveEvents((e) => {
    if (!paused) setEvents((old) => [...old, e].slice(-KEEP));
  });

  const shown = useMemo(
    () =>
      events.filter(
        (e) =>
          (group === 'all' || eventGroups[e.type] === group) &&
          (type === '' || e.type === type) &&
          (job === '' || (e.jobId ?? '').includes(job)) &&
          (worker === '' || (e.worker ?? '').includes(worker)),
      ),
    [events, group, type, job, worker],
  );

  return (
    <div className="page fill-page">
      <PageHeader title="Event log">
        <select value={group} onChange={(e) => setGroup(e.target.value)} aria-label="Kind">
          {['all', 'job', 'task', 'worker', 'farm'].map((g) => (
            <option key={g} value={g}>
              {g === 'all' ? 'all kinds' : g}
            </option>
          ))}
        </select>
        <select
          value={type}
          onChange={(e) => setType(e.target.value as EventType | '')}
          aria-label="Event type"
        >
          <option value="">all types</option>
          {eventTypeList.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
        <input
          type="search"
          placeholder="Job id"
          value={job}
          onChange={(e) => setJob(e.target.value.trim())}
          aria-label="Job filter"
        />
        <input
          type="search"
          placeholder="Worker"
          value={worker}
          onChange={(e) => setWorker(e.target.value.trim())}
          aria-label="Worker filter"
        />
        <button data-view onClick={() => setPaused((p) => !p)} aria-pressed={paused}>
          {paused ? 'Resume' : 'Pause'}
        </button>
        <span className="count" data-testid="event-count">
          {shown.length} of {events.length} events
        </span>
      </PageHeader>
      <ErrorNote error={error} />
      <DataTable
        label="Events"
        data={shown}
        columns={columns}
        getRowId={(e) => String(e.seq)}
        initialSorting={[{ id: 'seq', desc: true }]}
        rowHeight={22}
        fill
        empty="No events yet."
      />
    </div>
  );
}
