import type { TaskState } from './job-spec.js';

/**
 * The task state machine, beside the job one (`job-state.ts`): which moves a task may make
 * and where a rendering attempt ends. Pure; the store applies it in SQL (`dispatch.ts`,
 * `task-ends.ts`, `jobs.ts`), whose UPDATEs re-check the `from` state in their WHERE clause,
 * so a move that another transaction made first changes nothing.
 *
 *   pending ──release──▶ queued ──claim──▶ rendering ──complete──▶ completed
 *      ▲                  ▲  ▲                │ │
 *      │                  │  └── requeue ─────┘ └──fail (no retries left)──▶ failed
 *      └───── pend ───────┘   (retry, hand back, interruption, lease expiry)
 *   any unfinished ──suspend──▶ suspended ──resume──▶ queued (or pending)
 *   completed / failed ──requeue (a user)──▶ queued
 */
const moves: Readonly<Record<TaskState, readonly TaskState[]>> = {
  pending: ['queued', 'suspended'],
  queued: ['rendering', 'pending', 'suspended'],
  rendering: ['completed', 'queued', 'failed', 'suspended'],
  completed: ['queued'],
  failed: ['queued'],
  suspended: ['queued', 'pending'],
};

/** Whether a task may move from `from` to `to`. */
export function canMoveTask(from: TaskState, to: TaskState): boolean {
  return moves[from].includes(to);
}

/** How a worker says a rendering attempt ended. */
export type AttemptOutcome = 'completed' | 'failed' | 'handed-back' | 'interrupted';

/**
 * Where a rendering task goes when its attempt ends: completed; back to the queue when it was
 * handed back or interrupted (not its fault) or failed with retries left (`errors` counts this
 * failure; a job allows `retries` of them); failed otherwise.
 */
export function taskAfterAttempt(
  outcome: AttemptOutcome,
  errors = 0,
  retries = 0,
): 'completed' | 'queued' | 'failed' {
  if (outcome === 'completed') return 'completed';
  if (outcome === 'failed') return errors <= retries ? 'queued' : 'failed';
  return 'queued';
}
