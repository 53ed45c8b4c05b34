import { describe, expect, it } from 'vitest';
import { taskStates } from './job-spec.js';
import { canMoveTask, taskAfterAttempt } from './task-state.js';
import { workerAfterWork } from './worker-state.js';

describe('task state machine', () => {
  it('lets a task go out, come back and finish, and nothing skips the claim', () => {
    expect(canMoveTask('queued', 'rendering')).toBe(true);
    expect(canMoveTask('rendering', 'completed')).toBe(true);
    expect(canMoveTask('rendering', 'queued')).toBe(true);
    expect(canMoveTask('completed', 'queued')).toBe(true);
    expect(canMoveTask('queued', 'completed')).toBe(false);
    expect(canMoveTask('pending', 'rendering')).toBe(false);
    expect(canMoveTask('completed', 'failed')).toBe(false);
    // No state moves to itself: a move that changes nothing is not a move.
    for (const s of taskStates) expect(canMoveTask(s, s)).toBe(false);
  });

  it('ends an attempt by its outcome, its errors and the retries the job allows', () => {
    expect(taskAfterAttempt('completed')).toBe('completed');
    expect(taskAfterAttempt('handed-back')).toBe('queued');
    expect(taskAfterAttempt('interrupted', 9, 0)).toBe('queued');
    expect(taskAfterAttempt('failed', 1, 1)).toBe('queued');
    expect(taskAfterAttempt('failed', 2, 1)).toBe('failed');
    expect(taskAfterAttempt('failed', 1, 0)).toBe('failed');
    for (const o of ['completed', 'failed', 'handed-back', 'interrupted'] as const) {
      expect(canMoveTask('rendering', taskAfterAttempt(o, 1, 0))).toBe(true);
    }
  });
});

describe('worker state after its work call', () => {
  it('renders when given a task, saying so once', () => {
    expect(workerAfterWork('idle', true, 0)).toEqual({
      state: 'rendering',
      event: 'worker.rendering',
    });
    expect(workerAfterWork('rendering', true, 1)).toEqual({ state: 'rendering', event: undefined });
    expect(workerAfterWork('stalled', true, 0).state).toBe('rendering');
  });
  it('is idle when it holds nothing, and back from a stall without an event', () => {
    expect(workerAfterWork('rendering', false, 0)).toEqual({ state: 'idle', event: 'worker.idle' });
    expect(workerAfterWork('rendering', false, 1)).toEqual({
      state: 'rendering',
      event: undefined,
    });
    expect(workerAfterWork('idle', false, 0)).toEqual({ state: 'idle', event: undefined });
    expect(workerAfterWork('stalled', false, 0)).toEqual({ state: 'idle', event: undefined });
    expect(workerAfterWork('offline', false, 1)).toEqual({ state: 'idle', event: undefined });
  });
});
