/**
 * One task's log, per attempt, following live output while the task renders: it asks for the
 * chunks after the last one it has (`?after=<seq>`) once a second and keeps the view pinned
 * to the bottom unless the reader scrolled up.
 */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { api, type Task, type TaskLogChunk } from '../api.js';
import { dateTime, duration, frameRange } from '../format.js';
import { StateBadge } from './bits.js';

const FOLLOW_MS = 1_000;
/** The most chunks held in the page (4 MiB of log at 64 KiB a chunk at most). */
const MAX_CHUNKS = 5_000;

export function TaskLog(props: { jobId: string; task: Task }): ReactNode {
  const { jobId, task } = props;
  const latest = Math.max(1, task.attempt);
  const [chosen, setChosen] = useState<number | null>(null);
  const attempt = chosen ?? latest;
  const [chunks, setChunks] = useState<TaskLogChunk[]>([]);
  const [error, setError] = useState<string | null>(null);
  const pre = useRef<HTMLPreElement>(null);
  const pinned = useRef(true);
  const live = task.state === 'rendering' && attempt === task.attempt;
  // Read by the follow loop without restarting it (and clearing the view) when the task ends.
  const liveRef = useRef(live);
  liveRef.current = live;

  useEffect(() => {
    let stopped = false;
    let after = 0;
    let timer: number | undefined;
    setChunks([]);
    setError(null);
    pinned.current = true;
    let wasLive = liveRef.current;
    const read = async () => {
      try {
        // Read every page there is, then wait for more.
        for (;;) {
          const r = await api.taskLog(jobId, task.index, after, attempt);
          if (stopped) return;
          if (r.chunks.length > 0) {
            after = r.chunks[r.chunks.length - 1]!.seq;
            setChunks((old) => [...old, ...r.chunks].slice(-MAX_CHUNKS));
          }
          if (r.chunks.length < 1000) break;
        }
        setError(null);
      } catch (err) {
        if (!stopped) setError(err instanceof Error ? err.message : String(err));
      }
      // Follow while the task renders, and read once more after it ends for the last lines.
      const again = liveRef.current || wasLive;
      wasLive = liveRef.current;
      if (!stopped && again) timer = window.setTimeout(() => void read(), FOLLOW_MS);
    };
    void read();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [jobId, task.index, attempt, task.attempt]);

  useEffect(() => {
    const el = pre.current;
    if (el && pinned.current) el.scrollTop = el.scrollHeight;
  }, [chunks]);

  const onScroll = () => {
    const el = pre.current;
    if (el) pinned.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
  };

  const elapsed = task.startedAt !== null ? (task.finishedAt ?? Date.now()) - task.startedAt : null;

  return (
    <section className="panel task-log" aria-label={`Log of task ${task.index}`}>
      <div className="panel-head">
        <h2>
          Task {task.index} <span className="muted">frames {frameRange(task.frames)}</span>
        </h2>
        <StateBadge state={task.state} />
        {task.worker && <span className="muted">on {task.worker}</span>}
        {task.state === 'rendering' && (
          <span className="muted">
            {Math.floor(task.progress)}% {task.status}
          </span>
        )}
        {elapsed !== null && <span className="muted">{duration(elapsed)}</span>}
        {task.startedAt !== null && (
          <span className="muted">started {dateTime(task.startedAt)}</span>
        )}
        <span className="spacer" />
        {live && <span className="live-dot">following</span>}
        <label>
          Attempt{' '}
          <select
            value={attempt}
            onChange={(e) => setChosen(Number(e.target.value))}
            aria-label="Attempt"
          >
            {Array.from({ length: latest }, (_, i) => i + 1).map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </label>
      </div>
      {error && <div className="note error">{error}</div>}
      <pre ref={pre} onScroll={onScroll} className="log" data-testid="task-log">
        {chunks.length === 0 ? (
          <span className="muted">
            {task.attempt === 0 ? 'The task has not started yet.' : 'No output yet.'}
          </span>
        ) : (
          chunks.map((c) => (
            <span key={c.seq} className={`log-${c.stream}`}>
              {c.text}
            </span>
          ))
        )}
      </pre>
    </section>
  );
}
