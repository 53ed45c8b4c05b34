import { mapTaskPaths, rulesFor, type PathMapping } from '../core/path-mapping.js';
import type { TaskAssignment } from '../core/types.js';
import type { Store } from '../store/contract.js';

/**
 * Rules are re-read this often even without a notification: the safety net for a settings
 * notification that was lost (the manager invalidates the rules whenever it hears one).
 */
const RULES_TTL_MS = 5_000;

/**
 * Applies path mapping to tasks as they are handed to workers: the worker's region and OS
 * pick the rules. Rules and worker profiles are cached: the claim path stays one query.
 */
export class PathMapper {
  private rules: PathMapping[] = [];
  private loadedAt = -Infinity;
  /** Bumped by `invalidate`: a read that started before it must not be kept as current. */
  private generation = 0;
  private workers = new Map<string, { region: string; os: string }>();

  constructor(private readonly store: Store) {}

  /** Forgets the rules (a path mapping changed, here or through another manager). */
  invalidate(): void {
    this.loadedAt = -Infinity;
    this.generation++;
  }

  forgetWorker(name: string): void {
    this.workers.delete(name);
  }

  async listRules(): Promise<PathMapping[]> {
    if (Date.now() - this.loadedAt > RULES_TTL_MS) {
      const generation = this.generation;
      const rules = await this.store.listPathMappings();
      // Invalidated while reading: these rules answer this call but are not kept.
      if (generation !== this.generation) return rules;
      this.rules = rules;
      this.loadedAt = Date.now();
    }
    return this.rules;
  }

  async mapForWorker(task: TaskAssignment, workerName: string): Promise<TaskAssignment> {
    const rules = await this.listRules();
    if (rules.length === 0) return task;
    let profile = this.workers.get(workerName);
    if (!profile) {
      const w = await this.store.fetchWorker(workerName);
      if (!w) return task;
      profile = { region: w.region, os: w.capabilities.os };
      this.workers.set(workerName, profile);
    }
    return mapTaskPaths(task, rulesFor(rules, profile), profile.os);
  }
}
