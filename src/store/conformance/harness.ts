import { jobSubmissionSchema, type JobSubmissionInput } from '../../core/job-spec.js';
import { parseFrameList } from '../../core/frames.js';
import type { Job } from '../../core/types.js';
import {
  workerRegistrationSchema,
  type WorkerRegistrationInput,
} from '../../core/worker-protocol.js';
import { afterEach, beforeEach } from 'vitest';
import type { Store, StoreOptions } from '../contract.js';

/** A controllable clock for store tests: time moves only when a test says so. */
export class TestClock {
  t = 1_700_000_000_000;
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export type OpenStore = (options: StoreOptions) => Promise<Store>;

/** Submits a job as the HTTP layer would: schema defaults, parsed frames. */
export async function submit(store: Store, input: Partial<JobSubmissionInput> = {}): Promise<Job> {
  const sub = jobSubmissionSchema.parse({ plugin: 'CommandLine', frames: '1', ...input });
  return store.createJob(sub, parseFrameList(sub.frames));
}

export async function register(
  store: Store,
  name: string,
  input: Partial<WorkerRegistrationInput> = {},
): Promise<void> {
  await store.registerWorker(
    workerRegistrationSchema.parse({
      name,
      capabilities: { cpus: 2, memoryMb: 1024, os: 'linux' },
      ...input,
    }),
  );
}

/**
 * Gives each test of the enclosing `describe` a fresh store on its own test clock (leases of
 * 10 s) and closes it afterwards; `use` receives them before each test.
 */
export function withFreshStore(
  open: OpenStore,
  use: (store: Store, clock: TestClock) => void,
): void {
  let store: Store | undefined;
  beforeEach(async () => {
    const clock = new TestClock();
    store = await open({ now: clock.now, leaseTtlMs: 10_000 });
    use(store, clock);
  });
  afterEach(async () => {
    await store?.close();
  });
}
