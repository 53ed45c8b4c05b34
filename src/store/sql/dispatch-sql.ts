import { CompiledQuery, type Kysely } from 'kysely';
import type { Dialect } from './dialect.js';
import { LEASE_SQL } from './ids.js';
import { prepareOnce } from './prepared.js';
import type { Database } from './schema.js';

/*
 * The fixed SQL texts of dispatch's hot path, one per dialect where they differ, and how they
 * run (`run`): see the top of `dispatch.ts`.
 */

export type Db = Kysely<Database>;

/** Candidate jobs fetched per round of the dispatch query. */
export const CANDIDATE_PAGE = 32;

// ── fixed SQL ───────────────────────────────────────────────────────────────

export type Row = Record<string, unknown>;

/**
 * `?` placeholders as PostgreSQL's `$1, $2, …` (converted once per SQL text), registered as a
 * named prepared statement (`prepared.ts`).
 */
const pgText = new Map<string, string>();
function toPg(text: string): string {
  let out = pgText.get(text);
  if (out === undefined) {
    let n = 0;
    out = text.replace(/\?/g, () => `$${++n}`);
    pgText.set(text, out);
    prepareOnce(out);
  }
  return out;
}

/** Runs one fixed SQL text (written with `?` placeholders) and returns its rows. */
export async function run(
  db: Db,
  dialect: Dialect,
  text: string,
  params: readonly unknown[],
): Promise<Row[]> {
  const sqlText = dialect === 'postgres' ? toPg(text) : text;
  const r = await db.executeQuery<Row>(CompiledQuery.raw(sqlText, [...params]));
  return r.rows;
}

/** Marks the worker seen; returns its row and how many tasks it holds. Locks the row. */
export const TOUCH_WORKER = `update workers set last_seen_at = ? where name = ?
  returning state, enabled, slots, pools, groups, region, apps,
    (select count(*) from tasks where worker = workers.name and state = 'rendering') as running`;

/** The task a completion report's lease names (read before it changes: its held limits). */
export const TASK_BY_LEASE = {
  sqlite: `select job_id, idx, attempt, held_limits from tasks
    where lease = ? and state = 'rendering' and worker = ?`,
  postgres: `select t.job_id, t.idx, t.attempt, t.held_limits from tasks as t
    inner join jobs as j on j.id = t.job_id
    where t.lease = ? and t.state = 'rendering' and t.worker = ? for key share of j`,
} as const;

export const COMPLETE_TASK = `update tasks set state = 'completed', lease = null, lease_expires_at = null,
    held_limits = '[]', finished_at = ?, progress = 100
  where job_id = ? and idx = ? and lease = ? and state = 'rendering'
  returning idx`;

/**
 * PostgreSQL: `TASK_BY_LEASE` and `COMPLETE_TASK` in one round trip. `t` holds the task as it
 * was (its held limits); the UPDATE re-checks the lease on the task's newest version.
 */
export const COMPLETE_BY_LEASE = `with t as (select t.job_id, t.idx, t.attempt, t.held_limits, t.lease
    from tasks as t inner join jobs as j on j.id = t.job_id
    where t.lease = ? and t.state = 'rendering' and t.worker = ? for key share of j)
  update tasks as u set state = 'completed', lease = null, lease_expires_at = null,
    held_limits = '[]', finished_at = ?, progress = 100
  from t where u.job_id = t.job_id and u.idx = t.idx and u.lease = t.lease
    and u.state = 'rendering'
  returning t.job_id, t.idx, t.attempt, t.held_limits`;

/** A job re-read under its lock when a claim has chosen it (PostgreSQL). */
export const LOCK_JOB = {
  keyShare: `select * from jobs where id = ? for key share`,
  /**
   * Machine-limited jobs: their claims take turns. `NO KEY UPDATE` conflicts with itself but
   * not with the key-share locks other calls hold on the job (a completion's lookup): with
   * `FOR UPDATE`, two workers each completing a task of the job and claiming its next would
   * each wait for the other's key share (a deadlock).
   */
  turns: `select * from jobs where id = ? for no key update`,
} as const;

export const RENDERING_WORKERS = `select distinct worker from tasks
  where job_id = ? and state = 'rendering'`;

export const READ_LIMITS = `select name, max, in_use from limits`;

function claimTaskSql(lock: '' | ' for update' | ' for update skip locked'): string {
  return `update tasks set state = 'rendering', worker = ?, lease = ${LEASE_SQL},
      lease_expires_at = ?, held_limits = ?, attempt = attempt + 1, progress = 0, status = '',
      log_bytes = 0, log_seq = 0, log_batch = 0, log_trim_seq = 0, started_at = ?,
      finished_at = null
    where job_id = ? and state = 'queued' and idx = (select idx from tasks
      where job_id = ? and state = 'queued' order by idx limit 1${lock})
    returning idx, frames, attempt, lease`;
}
export const CLAIM_TASK = {
  sqlite: claimTaskSql(''),
  postgres: claimTaskSql(' for update skip locked'),
  /** PostgreSQL, when every queued task is locked by claims in flight: wait for them. */
  postgresWaiting: claimTaskSql(' for update'),
} as const;

/** One job's counter deltas of a call, and what its row says afterwards. */
export const UPDATE_COUNTERS = `update jobs set n_queued = n_queued + ?, n_rendering = n_rendering + ?,
    n_completed = n_completed + ?
  where id = ?
  returning state, started_at, task_count, n_pending, n_queued, n_rendering, n_completed,
    n_failed, n_suspended,
    (select count(*) from job_dependencies as d inner join jobs as dj on dj.id = d.job_id
      where d.depends_on = jobs.id and dj.frame_dependent = 1 and dj.n_pending > 0)
      as frame_waiters`;

/** PostgreSQL: adds a call's counter deltas of a job to its connection's row (`job-counts.ts`). */
export const ADD_COUNT_DELTA = `insert into job_count_deltas as d (job_id, shard, queued, rendering, completed)
  values (?, pg_backend_pid(), ?, ?, ?)
  on conflict (job_id, shard) do update set queued = d.queued + excluded.queued,
    rendering = d.rendering + excluded.rendering, completed = d.completed + excluded.completed
  returning (select count(*) from job_dependencies as dd inner join jobs as dj on dj.id = dd.job_id
      where dd.depends_on = d.job_id and dj.frame_dependent = 1 and dj.n_pending > 0)
      as frame_waiters`;

/** PostgreSQL: a job's turn (see `finish`). Conflicts with itself, not with key-share locks. */
export const TAKE_TURN = `select 1 from jobs where id = ? for no key update`;

/** PostgreSQL: locks a job `FOR UPDATE` unless another transaction holds any lock on it. */
export const TRY_LOCK_JOB = `select 1 from jobs where id = ? for update skip locked`;

/** PostgreSQL: a job's counters, its row's plus its deltas (read after `TAKE_TURN`). */
export const COUNTED_JOB = `select j.state, j.started_at, j.task_count, j.n_pending, j.n_failed,
    j.n_suspended, j.n_queued + coalesce(sum(d.queued), 0) as n_queued,
    j.n_rendering + coalesce(sum(d.rendering), 0) as n_rendering,
    j.n_completed + coalesce(sum(d.completed), 0) as n_completed
  from jobs as j left join job_count_deltas as d on d.job_id = j.id
  where j.id = ? group by j.id`;

export const SET_JOB_ACTIVE_STATE = `update jobs set state = ?, started_at = coalesce(started_at, ?)
  where id = ?`;

export const SET_WORKER_STATE = `update workers set state = ? where name = ?`;

/**
 * The dispatch query's text for one shape of worker (how many pools, groups and application
 * plugins it has).
 */
const candidateTexts = new Map<string, string>();
export function candidateQuery(
  dialect: Dialect,
  pools: number,
  groups: number,
  plugins: number,
): string {
  const key = `${dialect}/${pools}/${groups}/${plugins}`;
  let text = candidateTexts.get(key);
  if (text !== undefined) return text;
  const marks = (k: number) => Array.from({ length: k }, () => '?').join(', ');
  const rank = [
    ...Array.from({ length: pools }, (_, i) => `when pool = ? then ${i}`),
    ...Array.from({ length: pools }, (_, i) => `when secondary_pool = ? then ${pools + i}`),
    'when 1 = 0 then 0',
  ].join(' ');
  const poolOk =
    pools > 0
      ? `(j.pool in ('none', '') or j.pool in (${marks(pools)}) or j.secondary_pool in (${marks(pools)}))`
      : `j.pool in ('none', '')`;
  const groupOk =
    groups > 0 ? `(j.grp in ('none', '') or j.grp in (${marks(groups)}))` : `j.grp in ('none', '')`;
  // PostgreSQL: the row's n_queued is an upper bound (claims lower it in delta rows), so a
  // job drained since its last fold is passed over by its tasks index, not by a claim attempt.
  const queuedOk =
    dialect === 'postgres'
      ? `and exists (select 1 from tasks as q where q.job_id = j.id and q.state = 'queued')`
      : '';
  text = `select * from jobs as j where j.n_queued > 0 and j.state in ('queued', 'rendering')
    ${queuedOk} and ${poolOk} and ${groupOk} and j.plugin in (${marks(plugins)})
    and not exists (select 1 from job_worker_errors as e where e.job_id = j.id and e.worker = ?
      and j.bad_worker_errors > 0 and e.errors >= j.bad_worker_errors)
    order by case ${rank} else ${2 * pools} end, j.priority desc, j.submitted_at, j.id
    limit ${CANDIDATE_PAGE} offset ?`;
  candidateTexts.set(key, text);
  return text;
}
