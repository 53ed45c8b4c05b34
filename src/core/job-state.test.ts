import { describe, expect, it } from 'vitest';
import { activeJobState, assertJobAction, emptyCounts } from './job-state.js';

describe('activeJobState', () => {
  it('is completed when every task is, rendering while any renders, queued otherwise', () => {
    expect(activeJobState({ ...emptyCounts(), completed: 3 }, 3)).toBe('completed');
    expect(activeJobState({ ...emptyCounts(), completed: 1, rendering: 1, queued: 1 }, 3)).toBe(
      'rendering',
    );
    expect(activeJobState({ ...emptyCounts(), completed: 2, queued: 1 }, 3)).toBe('queued');
    expect(activeJobState({ ...emptyCounts(), pending: 3 }, 3)).toBe('queued');
  });
});

describe('assertJobAction', () => {
  it('allows what a wrangler expects', () => {
    expect(() => assertJobAction('rendering', 'suspend')).not.toThrow();
    expect(() => assertJobAction('suspended', 'resume')).not.toThrow();
    expect(() => assertJobAction('completed', 'requeue')).not.toThrow();
    expect(() => assertJobAction('pending', 'release')).not.toThrow();
  });
  it('refuses the rest with a conflict that names the state', () => {
    expect(() => assertJobAction('queued', 'resume')).toThrow(/cannot resume a job that is queued/);
    expect(() => assertJobAction('deleted', 'requeue')).toThrow(
      expect.objectContaining({ code: 'conflict' }),
    );
    expect(() => assertJobAction('completed', 'suspend')).toThrow(/allowed from/);
  });
});
