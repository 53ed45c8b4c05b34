/**
 * Wakes long-polling claims when work may have appeared (a submission, a release, a
 * finished task freeing a limit). In one process this is all it takes; managers sharing a
 * database will also wake it from the database's notifications.
 */
export class WorkSignal {
  private waiters = new Set<() => void>();

  /** Resolves when woken, after `ms`, or when `abort` fires — whichever comes first. */
  wait(ms: number, abort?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        abort?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      abort?.addEventListener('abort', done, { once: true });
    });
  }

  wake(): void {
    const all = [...this.waiters];
    this.waiters.clear();
    for (const w of all) w();
  }

  get waiting(): number {
    return this.waiters.size;
  }
}
