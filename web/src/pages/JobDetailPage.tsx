/**
 * One job: its state and actions, the task grid, a task's live log, dependencies, output
 * folders with their gfs-sync outcome, the latest rendered frame, extra info and environment.
 * Kept live by refetching the job and the tasks an event names (debounced); tasks that render
 * are re-read every two seconds for their progress, which changes without an event.
 */
import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { api, ApiError, type Job, type JobAction, type Task } from '../api.js';
import { ErrorNote, Progress, StateBadge } from '../components/bits.js';
import { TaskGrid } from '../components/TaskGrid.js';
import { TaskLog } from '../components/TaskLog.js';
import { bytes, dateTime } from '../format.js';
import { Debouncer, useFeedGeneration, useLiveEvents } from '../live.js';
import { Link } from '../router.js';

const PROGRESS_POLL_MS = 2_000;

interface SyncOutcome {
  directory: string;
  outcome: string;
}

/** gfs-sync's record on a job (`pluginData["gfs-sync"]`), read defensively. */
function syncOutcomes(job: Job): { folderJob: string | null; outcomes: SyncOutcome[] } {
  const data = job.pluginData['gfs-sync'] as
    { folderJob?: unknown; outcomes?: unknown } | undefined;
  const outcomes = Array.isArray(data?.outcomes)
    ? (data.outcomes as unknown[]).flatMap((o) => {
        const r = o as Partial<SyncOutcome> | null;
        return typeof r?.directory === 'string' && typeof r.outcome === 'string'
          ? [{ directory: r.directory, outcome: r.outcome }]
          : [];
      })
    : [];
  return {
    folderJob: typeof data?.folderJob === 'string' ? data.folderJob : null,
    outcomes,
  };
}

/**
 * The actions offered per state: `allowedFrom` in src/core/job-state.ts read the other way
 * (the monitor imports only types from core; the manager refuses anything else with a 409).
 */
const actionsFor: Record<string, JobAction[]> = {
  pending: ['release', 'suspend', 'requeue', 'fail', 'archive', 'delete'],
  queued: ['suspend', 'pend', 'requeue', 'fail', 'archive', 'delete'],
  rendering: ['suspend', 'pend', 'requeue', 'fail', 'archive', 'delete'],
  suspended: ['resume', 'pend', 'requeue', 'fail', 'archive', 'delete'],
  completed: ['requeue', 'archive', 'delete'],
  failed: ['requeue', 'archive', 'delete'],
  archived: ['delete'],
  deleted: [],
};

/** Merges a page of re-read tasks (a contiguous run of indexes) into the list. */
function mergeTasks(old: Task[], fresh: Task[]): Task[] {
  if (fresh.length === 0) return old;
  const next = old.slice();
  for (const t of fresh) next[t.index] = t;
  return next;
}

function KeyValues(props: {
  values: Record<string, unknown>;
  empty: string;
  /** Leave out blank values (the job's own fields, most of which are optional). */
  skipBlank?: boolean;
}): ReactNode {
  const entries = Object.entries(props.values).filter(
    ([, v]) => !props.skipBlank || (v !== '' && v !== null && v !== undefined),
  );
  if (entries.length === 0) return <p className="muted">{props.empty}</p>;
  return (
    <table className="kv">
      <tbody>
        {entries.map(([k, v]) => (
          <tr key={k}>
            <th>{k}</th>
            <td>{typeof v === 'string' ? v : JSON.stringify(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function LatestFrame(props: { job: Job }): ReactNode {
  const { job } = props;
  const [image, setImage] = useState<{ url: string; name: string; size: number } | null>(null);
  const completed = job.counts.completed;
  useEffect(() => {
    let stopped = false;
    if (job.outputDirectories.length === 0) return;
    api.latestOutput(job.id).then(
      (r) => {
        if (stopped) return;
        setImage(
          r.image && {
            url: api.outputUrl(job.id, r.image.directory, r.image.name, r.image.modifiedAt),
            name: r.image.name,
            size: r.image.size,
          },
        );
      },
      () => undefined,
    );
    return () => {
      stopped = true;
    };
    // Look again whenever another task finished.
  }, [job.id, job.outputDirectories.length, completed]);
  if (!image) return <p className="muted">No rendered image yet.</p>;
  return (
    <figure className="thumb">
      <a href={image.url} target="_blank" rel="noreferrer">
        <img src={image.url} alt={`Latest frame ${image.name}`} data-testid="latest-frame" />
      </a>
      <figcaption>
        {image.name} <span className="muted">{bytes(image.size)}</span>
      </figcaption>
    </figure>
  );
}

export function JobDetailPage(props: { id: string }): ReactNode {
  const { id } = props;
  const generation = useFeedGeneration();
  const [job, setJob] = useState<Job | null>(null);
  const [tasks, setTasks] = useState<Task[]>([]);
  const [deps, setDeps] = useState<Record<string, Job | null>>({});
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [selected, setSelected] = useState<number | null>(null);
  const [priority, setPriority] = useState<string>('');

  const loadJob = useCallback(async () => {
    try {
      const j = await api.getJob(id);
      setJob(j);
      setError(null);
      return j;
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      return null;
    }
  }, [id]);

  const loadTasks = useCallback(
    async (range?: { from: number; to: number }) => {
      try {
        if (!range) setTasks(await api.allTasks(id));
        else {
          const fresh = await api.listTasks(id, range.from, range.to - range.from + 1);
          setTasks((old) => mergeTasks(old, fresh));
        }
      } catch (err) {
        setError(err instanceof Error ? err.message : String(err));
      }
    },
    [id],
  );

  // Everything again on every stream (re)connect.
  useEffect(() => {
    if (generation === 0) return;
    void loadJob().then((j) => {
      if (j) setPriority(String(j.priority));
    });
    void loadTasks();
  }, [generation, loadJob, loadTasks]);

  // Names of the jobs this one waits for.
  const depKey = job?.dependencies.join(',') ?? '';
  useEffect(() => {
    if (!depKey) return;
    let stopped = false;
    void Promise.all(
      depKey.split(',').map((d) =>
        api.getJob(d).then(
          (j) => [d, j] as const,
          () => [d, null] as const,
        ),
      ),
    ).then((pairs) => {
      if (!stopped) setDeps(Object.fromEntries(pairs));
    });
    return () => {
      stopped = true;
    };
    // A dependency finishing changes this job's state (it is released): look again then.
  }, [depKey, generation, job?.state]);

  // Live: the job and the tasks events name, batched.
  const batch = useRef<Debouncer<number | 'job' | 'all'>>(null);
  useEffect(() => {
    const d = new Debouncer<number | 'job' | 'all'>(200, (keys) => {
      void loadJob();
      if (keys.has('all')) return void loadTasks();
      const indexes = [...keys].filter((k): k is number => typeof k === 'number');
      if (indexes.length === 0) return;
      const from = Math.min(...indexes);
      const to = Math.max(...indexes);
      void loadTasks(to - from < 1000 ? { from, to } : undefined);
    });
    batch.current = d;
    return () => d.cancel();
  }, [loadJob, loadTasks]);
  useLiveEvents((e) => {
    if (e.jobId !== id) return;
    if (e.taskIndex !== null) batch.current?.add(e.taskIndex);
    // Job-wide changes (suspend, requeue, resume) move many tasks at once.
    else if (e.type !== 'job.updated' && e.type !== 'job.error') batch.current?.add('all');
    batch.current?.add('job');
  });

  // Progress of rendering tasks changes without events.
  const rendering = tasks.filter((t) => t.state === 'rendering').map((t) => t.index);
  const renderingKey = rendering.join(',');
  useEffect(() => {
    if (!renderingKey) return;
    const indexes = renderingKey.split(',').map(Number);
    const timer = window.setInterval(() => {
      const from = Math.min(...indexes);
      const to = Math.max(...indexes);
      void loadTasks(to - from < 1000 ? { from, to } : undefined);
    }, PROGRESS_POLL_MS);
    return () => window.clearInterval(timer);
  }, [renderingKey, loadTasks]);

  const act = async (a: JobAction) => {
    if (a === 'delete' && !window.confirm('Delete this job?')) return;
    try {
      setJob(await api.jobAction(id, a));
      setNote(null);
    } catch (err) {
      setNote(err instanceof ApiError ? err.message : String(err));
    }
  };
  const savePriority = async () => {
    try {
      const j = await api.updateJob(id, { priority: Number(priority) });
      setJob(j);
      setNote(null);
    } catch (err) {
      setNote(err instanceof ApiError ? err.message : String(err));
    }
  };

  if (!job) {
    return (
      <div className="page">
        <ErrorNote error={error} />
        {!error && <p className="muted">Loading job {id}…</p>}
      </div>
    );
  }
  const task = selected !== null ? tasks[selected] : undefined;
  const sync = syncOutcomes(job);
  const outcomeOf = (dir: string) => sync.outcomes.find((o) => o.directory === dir)?.outcome;

  return (
    <div className="page job-detail">
      <div className="page-header">
        <h1>
          <Link to="/jobs">Jobs</Link> / {job.name}
        </h1>
        <StateBadge state={job.state} />
        <span className="muted mono">{job.id}</span>
        <div className="tools" role="toolbar" aria-label="Job actions">
          {(actionsFor[job.state] ?? []).map((a) => (
            <button
              key={a}
              className={a === 'delete' || a === 'fail' ? 'danger' : ''}
              onClick={() => void act(a)}
            >
              {a[0]!.toUpperCase() + a.slice(1)}
            </button>
          ))}
          <label>
            Priority{' '}
            <input
              className="narrow"
              type="number"
              min={0}
              max={100}
              value={priority}
              onChange={(e) => setPriority(e.target.value)}
              aria-label="Priority"
            />
          </label>
          <button onClick={() => void savePriority()}>Set</button>
        </div>
      </div>
      <ErrorNote error={note ?? error} />
      {job.state === 'pending' && job.pendingReason && (
        <div className="note">Pending: {job.pendingReason}</div>
      )}

      <div className="detail-grid">
        <section className="panel">
          <div className="panel-head">
            <h2>Tasks</h2>
            <span className="muted" data-testid="task-summary">
              {job.counts.completed}/{job.taskCount} done · {job.counts.rendering} rendering ·{' '}
              {job.counts.queued} queued · {job.counts.failed} failed · {job.errorCount} errors
            </span>
            <span className="spacer" />
            <div style={{ width: 200 }}>
              <Progress
                done={job.counts.completed}
                total={job.taskCount}
                rendering={job.counts.rendering}
                failed={job.counts.failed}
              />
            </div>
          </div>
          <TaskGrid tasks={tasks} selected={selected} onSelect={setSelected} />
          <div className="legend">
            {['pending', 'queued', 'rendering', 'completed', 'failed', 'suspended'].map((s) => (
              <span key={s} className={`legend-item state-${s}`}>
                {s}
              </span>
            ))}
          </div>
        </section>

        <section className="panel">
          <div className="panel-head">
            <h2>Latest frame</h2>
          </div>
          <LatestFrame job={job} />
        </section>
      </div>

      {task ? (
        <TaskLog key={`${id}:${task.index}`} jobId={id} task={task} />
      ) : (
        <p className="muted">Select a task to read its log.</p>
      )}

      <div className="detail-grid three">
        <section className="panel">
          <div className="panel-head">
            <h2>Job</h2>
          </div>
          <KeyValues
            skipBlank
            empty=""
            values={{
              user: job.user,
              batch: job.batchName,
              department: job.department,
              plugin: job.plugin,
              frames: `${job.frames} (${job.frameCount} frames, chunk ${job.chunkSize})`,
              priority: job.priority,
              pool: job.secondaryPool ? `${job.pool} (then ${job.secondaryPool})` : job.pool,
              group: job.group,
              regions: job.regions.join(', ') || 'any',
              limits: job.limits.join(', '),
              'machine limit': job.machineLimit || 'none',
              submitted: dateTime(job.submittedAt),
              started: dateTime(job.startedAt),
              finished: dateTime(job.finishedAt),
              'bad workers': job.badWorkers.join(', '),
              comment: job.comment,
            }}
          />
        </section>
        <section className="panel">
          <div className="panel-head">
            <h2>Dependencies</h2>
          </div>
          {job.dependencies.length === 0 ? (
            <p className="muted">None.</p>
          ) : (
            <ul className="plain">
              {job.dependencies.map((d) => {
                const dep = deps[d];
                return (
                  <li key={d}>
                    <Link to={`/jobs/${d}`}>{dep?.name ?? d}</Link>{' '}
                    {dep && <StateBadge state={dep.state} />}
                    {job.frameDependent && <span className="muted"> frame-dependent</span>}
                  </li>
                );
              })}
            </ul>
          )}
          {sync.folderJob && (
            <p className="muted">
              Folder job (gfs-sync):{' '}
              <Link to={`/jobs/${sync.folderJob}`}>
                {deps[sync.folderJob]?.name ?? sync.folderJob}
              </Link>
            </p>
          )}
          <div className="panel-head">
            <h2>Output</h2>
          </div>
          {job.outputDirectories.length === 0 ? (
            <p className="muted">No output directories.</p>
          ) : (
            <ul className="plain" aria-label="Output directories">
              {job.outputDirectories.map((d) => {
                const outcome = outcomeOf(d);
                return (
                  <li key={d}>
                    <span className="mono">{d}</span>{' '}
                    {outcome && (
                      <span className={`badge sync-${outcome.replace(/\s+/g, '-').toLowerCase()}`}>
                        {outcome}
                      </span>
                    )}
                  </li>
                );
              })}
            </ul>
          )}
          {job.outputFilenames.length > 0 && (
            <p className="mono muted">{job.outputFilenames.join(', ')}</p>
          )}
        </section>
        <section className="panel">
          <div className="panel-head">
            <h2>Extra info</h2>
          </div>
          <KeyValues values={job.extraInfo} empty="None." />
          <div className="panel-head">
            <h2>Environment</h2>
          </div>
          <KeyValues values={job.environment} empty="None." />
          <div className="panel-head">
            <h2>Plugin settings</h2>
          </div>
          <KeyValues values={job.pluginInfo} empty="None." />
        </section>
      </div>
    </div>
  );
}
