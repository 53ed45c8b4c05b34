import type { TaskAssignment } from '../../core/types.js';

/** A task assignment for application plugin tests: one chunk of job `j1`, no paths. */
export function taskFixture(overrides: Partial<TaskAssignment> = {}): TaskAssignment {
  return {
    lease: 'l1',
    leaseExpiresAt: 0,
    jobId: 'j1',
    jobName: 'job',
    taskIndex: 0,
    attempt: 1,
    frames: [1],
    plugin: 'CommandLine',
    pluginInfo: {},
    environment: {},
    outputDirectories: [],
    outputFilenames: [],
    taskTimeoutSeconds: 0,
    ...overrides,
  };
}
