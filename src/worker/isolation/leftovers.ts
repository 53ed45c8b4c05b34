import { allPids, killCgroup, removeCgroup } from './cgroup.js';
import { findMembers, killMembers } from './proc-scan.js';
import type { TaskGroupRecord } from './types.js';

/** What the worker found and killed of the task groups an earlier run recorded. */
export interface LeftoverReport {
  groups: number;
  /** The processes signalled (SIGKILL), by pid. */
  pids: number[];
}

/**
 * Kills every process of the task groups an earlier run of this worker recorded and did
 * not release (it was SIGKILLed or crashed; after a reboot this finds nothing). A cgroup is killed with cgroup.kill and
 * removed; then anything carrying the group's marker, and the members of its process group
 * when the group is provably the task's (its pgid may be a reused number by now). Which
 * mechanism is running now does not matter: each record says how its group was kept.
 */
export async function killRecordedGroups(records: TaskGroupRecord[]): Promise<LeftoverReport> {
  const pids = new Set<number>();
  for (const record of records) {
    if (record.cgroup !== undefined) {
      for (const pid of allPids(record.cgroup)) pids.add(pid);
      await killCgroup(record.cgroup, undefined);
      await removeCgroup(record.cgroup);
    }
    const match = {
      marker: record.id,
      ...(record.pgid !== undefined ? { pgid: record.pgid } : {}),
      ...(record.leaderStart !== undefined ? { leaderStart: record.leaderStart } : {}),
      proveGroup: true,
    };
    if (findMembers(match).length > 0) {
      for (const pid of await killMembers(match, 0)) pids.add(pid);
    }
  }
  return { groups: records.length, pids: [...pids] };
}
