import { conflict } from './errors.js';
import type { JobAction, JobState } from './job-spec.js';
import type { TaskCounts } from './types.js';

/** States in which a job's tasks may be dispatched (with queued tasks). */
export const DISPATCHABLE_JOB_STATES: readonly JobState[] = ['queued', 'rendering'];
/** States a job never leaves by itself. */
export const FINISHED_JOB_STATES: readonly JobState[] = [
  'completed',
  'failed',
  'archived',
  'deleted',
];

/**
 * The state an active (queued or rendering) job is in, from its task counts: completed when
 * every task is, rendering while any task renders, queued otherwise.
 */
export function activeJobState(counts: TaskCounts, taskCount: number): JobState {
  if (counts.completed >= taskCount) return 'completed';
  if (counts.rendering > 0) return 'rendering';
  return 'queued';
}

const allowedFrom: Record<JobAction, readonly JobState[]> = {
  suspend: ['pending', 'queued', 'rendering'],
  resume: ['suspended'],
  requeue: ['pending', 'queued', 'rendering', 'suspended', 'completed', 'failed'],
  fail: ['pending', 'queued', 'rendering', 'suspended'],
  delete: ['pending', 'queued', 'rendering', 'suspended', 'completed', 'failed', 'archived'],
  archive: ['pending', 'queued', 'rendering', 'suspended', 'completed', 'failed'],
  pend: ['queued', 'rendering', 'suspended'],
  release: ['pending'],
};

/** Throws a conflict naming the state when `action` cannot be applied to a job in `state`. */
export function assertJobAction(state: JobState, action: JobAction): void {
  if (!allowedFrom[action].includes(state)) {
    throw conflict(
      `cannot ${action} a job that is ${state} (allowed from: ${allowedFrom[action].join(', ')})`,
    );
  }
}

export function emptyCounts(): TaskCounts {
  return { pending: 0, queued: 0, rendering: 0, completed: 0, failed: 0, suspended: 0 };
}
