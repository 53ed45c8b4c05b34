/** Jobs: every live job in one sortable, filterable, virtualized table with bulk actions. */
import { createColumnHelper } from '@tanstack/react-table';
import { useMemo, useState, type ReactNode } from 'react';
import { api, ApiError, type Job, type JobAction, type JobState } from '../api.js';
import { DataTable } from '../components/DataTable.js';
import { ErrorNote, PageHeader, Progress, StateBadge } from '../components/bits.js';
import { dateTime } from '../format.js';
import { Link, navigate } from '../router.js';
import { useJobs } from '../stores.js';

const col = createColumnHelper<Job>();

const columns = [
  col.accessor('name', {
    header: 'Name',
    size: 240,
    cell: (c) => (
      <Link to={`/jobs/${c.row.original.id}`} title={c.row.original.id}>
        {c.getValue()}
      </Link>
    ),
  }),
  col.accessor('batchName', { header: 'Batch', size: 120 }),
  col.accessor('user', { header: 'User', size: 90 }),
  col.accessor('plugin', { header: 'Plugin', size: 110 }),
  col.accessor('state', {
    header: 'State',
    size: 100,
    cell: (c) => <StateBadge state={c.getValue()} title={c.row.original.pendingReason} />,
  }),
  col.accessor((j) => (j.taskCount > 0 ? j.counts.completed / j.taskCount : 0), {
    id: 'progress',
    header: 'Progress',
    size: 120,
    cell: (c) => {
      const j = c.row.original;
      return (
        <Progress
          done={j.counts.completed}
          total={j.taskCount}
          rendering={j.counts.rendering}
          failed={j.counts.failed}
        />
      );
    },
  }),
  col.accessor((j) => j.counts.completed, {
    id: 'tasks',
    header: 'Tasks',
    size: 80,
    cell: (c) => (
      <span className="num">
        {c.getValue<number>()}/{c.row.original.taskCount}
      </span>
    ),
  }),
  col.accessor('errorCount', {
    header: 'Errors',
    size: 60,
    cell: (c) => <span className={c.getValue() > 0 ? 'num bad' : 'num'}>{c.getValue()}</span>,
  }),
  col.accessor('priority', {
    header: 'Pri',
    size: 50,
    cell: (c) => <span className="num">{c.getValue()}</span>,
  }),
  col.accessor('pool', { header: 'Pool', size: 80 }),
  col.accessor('group', { header: 'Group', size: 80 }),
  col.accessor((j) => j.regions.join(', '), { id: 'regions', header: 'Regions', size: 100 }),
  col.accessor('submittedAt', {
    header: 'Submitted',
    size: 150,
    cell: (c) => <span className="num">{dateTime(c.getValue())}</span>,
  }),
];

const stateFilters: Record<string, readonly JobState[] | null> = {
  all: null,
  active: ['pending', 'queued', 'rendering', 'suspended'],
  rendering: ['rendering'],
  queued: ['queued'],
  pending: ['pending'],
  suspended: ['suspended'],
  completed: ['completed'],
  failed: ['failed'],
};

function matches(job: Job, text: string): boolean {
  if (!text) return true;
  const t = text.toLowerCase();
  return [job.name, job.batchName, job.user, job.plugin, job.id, job.pool, job.group].some((v) =>
    v.toLowerCase().includes(t),
  );
}

export function JobsPage(): ReactNode {
  const { items, loaded, error } = useJobs();
  const [text, setText] = useState('');
  const [stateFilter, setStateFilter] = useState('all');
  const [selection, setSelection] = useState<Set<string>>(new Set());
  const [priority, setPriority] = useState('50');
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const shown = useMemo(() => {
    const states = stateFilters[stateFilter] ?? null;
    return items.filter((j) => (!states || states.includes(j.state)) && matches(j, text));
  }, [items, text, stateFilter]);
  // Only rows still present count as selected (a deleted job drops out).
  const selected = useMemo(() => {
    const ids = new Set(items.map((j) => j.id));
    return [...selection].filter((id) => ids.has(id));
  }, [items, selection]);

  async function apply(what: string, run: (id: string) => Promise<unknown>): Promise<void> {
    if (selected.length === 0) return;
    setBusy(true);
    const results = await Promise.allSettled(selected.map(run));
    setBusy(false);
    const refused = results.flatMap((r) =>
      r.status === 'rejected' ? [r.reason instanceof ApiError ? r.reason.message : 'failed'] : [],
    );
    const ok = results.length - refused.length;
    setNote(
      refused.length === 0
        ? `${what}: ${ok} job${ok === 1 ? '' : 's'}`
        : `${what}: ${ok} done, ${refused.length} refused — ${refused[0]}`,
    );
  }
  const action = (a: JobAction, label: string) => () => {
    if (a === 'delete' && !window.confirm(`Delete ${selected.length} job(s)?`)) return;
    void apply(label, (id) => api.jobAction(id, a));
  };
  const setJobPriority = () => {
    const p = Number(priority);
    if (!Number.isInteger(p) || p < 0 || p > 100) {
      setNote('Priority must be a whole number from 0 to 100');
      return;
    }
    void apply(`Priority ${p}`, (id) => api.updateJob(id, { priority: p }));
  };
  const none = selected.length === 0 || busy;

  return (
    <div className="page fill-page">
      <PageHeader title="Jobs">
        <input
          type="search"
          placeholder="Filter name, batch, user, plugin, id…"
          value={text}
          onChange={(e) => setText(e.target.value)}
          aria-label="Filter jobs"
        />
        <select
          value={stateFilter}
          onChange={(e) => setStateFilter(e.target.value)}
          aria-label="State filter"
        >
          {Object.keys(stateFilters).map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <span className="count" data-testid="job-count">
          {loaded ? `${shown.length} of ${items.length} jobs` : 'loading…'}
        </span>
      </PageHeader>
      <div className="toolbar" role="toolbar" aria-label="Job actions">
        <span className="muted">{selected.length} selected</span>
        <button disabled={none} onClick={action('suspend', 'Suspended')}>
          Suspend
        </button>
        <button disabled={none} onClick={action('resume', 'Resumed')}>
          Resume
        </button>
        <button disabled={none} onClick={action('requeue', 'Requeued')}>
          Requeue
        </button>
        <button disabled={none} className="danger" onClick={action('delete', 'Deleted')}>
          Delete
        </button>
        <span className="sep" />
        <label>
          Priority{' '}
          <input
            className="narrow"
            type="number"
            min={0}
            max={100}
            value={priority}
            onChange={(e) => setPriority(e.target.value)}
          />
        </label>
        <button disabled={none} onClick={setJobPriority}>
          Set priority
        </button>
        <button
          data-view
          disabled={shown.length === 0}
          onClick={() => setSelection(new Set(shown.map((j) => j.id)))}
        >
          Select all shown
        </button>
        {note && (
          <span className="muted" role="status">
            {note}
          </span>
        )}
      </div>
      <ErrorNote error={error} />
      <DataTable
        label="Jobs"
        data={shown}
        columns={columns}
        getRowId={(j) => j.id}
        initialSorting={[{ id: 'submittedAt', desc: true }]}
        selection={selection}
        onSelectionChange={setSelection}
        onRowDoubleClick={(j) => navigate(`/jobs/${j.id}`)}
        rowClassName={(j) => `row-${j.state}`}
        fill
        empty={loaded ? 'No jobs. Submit one with `drover submit`.' : 'Loading…'}
      />
    </div>
  );
}
