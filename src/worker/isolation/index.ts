import { killLeftovers, killTree, spawnTree } from '../process-tree.js';
import { cgroupIsolation, findCgroupHome } from './cgroup.js';
import { procScanIsolation } from './proc-scan.js';
import {
  newGroupId,
  TASK_GROUP_VARIABLE,
  type GroupRecorder,
  type Isolation,
  type IsolationMode,
  type Mechanism,
  type TaskGroupRecord,
} from './types.js';

export * from './types.js';

/**
 * Process isolation: how the worker keeps every process a task starts inside something it
 * can kill as a whole — on cancel, on timeout, when the process ends, and when the worker
 * itself died and starts again. Chosen once at start and printed ("process isolation: …"):
 *
 * - **cgroup v2** (Linux, when the worker may create cgroups beside its own): each task
 *   process runs in its own cgroup; killing it writes `1` to `cgroup.kill`, which reaches
 *   every process in it — also a grandchild that called `setsid` and cleared its
 *   environment. Leaving it takes a write to another cgroup's `cgroup.procs`, which a
 *   task running as the worker's user may do on purpose: such a process is still found
 *   by its DROVER_TASK_GROUP marker (below) unless it also empties its environment.
 * - **process group + /proc scan** (Linux otherwise): the task leads its own process group
 *   and session; its descendants are whatever has that process group or session, or carries
 *   the task's `DROVER_TASK_GROUP` marker in its environment (`/proc/<pid>/environ`, which
 *   a process inherits from its parent and keeps across `setsid`). This stands in for
 *   `PR_SET_CHILD_SUBREAPER`, which Node cannot set: a re-parented grandchild is found by its
 *   marker rather than its parent. A process that both leaves the session and empties its
 *   environment escapes it; only a cgroup stops that.
 * - **process group** (other POSIX systems, no /proc) and **taskkill /T** (Windows), as
 *   before.
 *
 * Every task group is recorded (`GroupRecorder`, the worker's spool) before its process
 * starts and forgotten once nothing of it is left, so a worker that was SIGKILLed finds
 * what its tasks left running when it starts again, and kills it before it registers (the
 * manager requeues those tasks on registration; the old processes must not render the same
 * frames at the same time as the new attempt).
 */

export interface IsolationOptions {
  /** `auto` (default): cgroup v2 when possible; `process-group` forces the fallback. */
  mode?: IsolationMode;
  recorder?: GroupRecorder;
}

/** Picks the strongest mechanism this process may use. */
export function detectIsolation(options: IsolationOptions = {}): Isolation {
  const mode = options.mode ?? 'auto';
  const recorder = options.recorder ?? { save: () => undefined, remove: () => undefined };
  if (process.platform === 'win32')
    return processGroupIsolation('taskkill', 'taskkill /T (Windows)');
  if (process.platform !== 'linux') {
    return processGroupIsolation('process-group', `process group (${process.platform}: no /proc)`);
  }
  let why: string;
  if (mode === 'process-group') {
    why = 'forced by --isolation process-group';
  } else {
    const home = findCgroupHome();
    if (home.ok) return cgroupIsolation(home.dir, recorder);
    if (mode === 'cgroup') throw new Error(`cannot use cgroup v2 isolation: ${home.reason}`);
    why = `no cgroup v2: ${home.reason}`;
  }
  return procScanIsolation(recorder, why);
}

/** Process group only: other POSIX systems and Windows. Nothing to record or reap. */
function processGroupIsolation(mechanism: Mechanism, description: string): Isolation {
  return {
    mechanism,
    description,
    spawn(argv, options) {
      const id = newGroupId();
      const child = spawnTree(argv, {
        env: { ...options.env, [TASK_GROUP_VARIABLE]: id },
        cwd: options.cwd,
      });
      const record: TaskGroupRecord = { id, ...(child.pid ? { pgid: child.pid } : {}) };
      return {
        child,
        record,
        kill: async ({ graceMs }) => {
          if (child.pid !== undefined) await killTree(child.pid, { graceMs });
        },
        killLeftovers: () => {
          if (child.pid !== undefined) killLeftovers(child.pid);
          return Promise.resolve();
        },
        release: () => Promise.resolve(),
      };
    },
  };
}

export { killRecordedGroups } from './leftovers.js';
