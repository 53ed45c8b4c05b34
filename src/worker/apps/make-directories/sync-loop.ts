import type { FolderOutcome } from '../../../core/app-settings.js';
import type { DirectorySync } from '../../../gfs/contract.js';

export interface SyncLoopOptions {
  directories: readonly string[];
  iterationCount: number;
  iterationDelayMs: number;
  check(dir: string): Promise<DirectorySync>;
  sleep(ms: number): Promise<void>;
  print(line: string): void;
}

/**
 * Polls the global file system until every directory has reached every site or the count
 * runs out, printing Deadline's progress lines (`Iteration i/n. Progress: p%`). Unlike the
 * original it checks before it first sleeps, so an already-synced folder costs no delay.
 * Returns each directory's outcome, in order.
 */
export async function waitForSync(o: SyncLoopOptions): Promise<FolderOutcome[]> {
  const outcome = new Map<string, FolderOutcome>();
  const unresolved = () => o.directories.filter((d) => !outcome.has(d));
  for (let i = 1; i <= o.iterationCount; i++) {
    o.print(
      `Iteration ${i}/${o.iterationCount}. Progress: ${Math.floor((i / o.iterationCount) * 100)}%`,
    );
    for (const dir of unresolved()) {
      const state = await o.check(dir);
      if (!state.onGfs) outcome.set(dir, 'Sync Skipped');
      else if (state.synced) outcome.set(dir, 'Sync Complete');
      else {
        const waiting = state.sites.filter((s) => !s.synced).map((s) => s.site);
        o.print(`  waiting for ${dir} to reach ${waiting.join(', ')}`);
      }
    }
    if (unresolved().length === 0) break;
    if (i < o.iterationCount) await o.sleep(o.iterationDelayMs);
  }
  return o.directories.map((d) => outcome.get(d) ?? 'Sync Timed Out');
}
