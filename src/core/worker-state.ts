import type { WorkerState } from './types.js';

/** A worker's state after a call and the event that says so (none when it did not change). */
export interface WorkerStep {
  state: WorkerState;
  event: 'worker.rendering' | 'worker.idle' | undefined;
}

/**
 * The worker state machine for the worker's own dispatch call (`Store.work`). Pure; the
 * store writes its result (`dispatch.ts`).
 *
 * - A worker that was given a task renders (`worker.rendering` when it did not already).
 * - A stalled or offline worker that calls is back: idle (it says nothing new by itself;
 *   house keeping recorded the stall).
 * - A worker given nothing that holds no task any more is idle (`worker.idle`).
 */
export function workerAfterWork(
  current: WorkerState,
  claimed: boolean,
  holding: number,
): WorkerStep {
  if (claimed) {
    return { state: 'rendering', event: current === 'rendering' ? undefined : 'worker.rendering' };
  }
  if (current === 'stalled' || current === 'offline') return { state: 'idle', event: undefined };
  if (current !== 'idle' && holding === 0) return { state: 'idle', event: 'worker.idle' };
  return { state: current, event: undefined };
}
