import { sql } from 'kysely';
import type { StoreHealth } from '../contract.js';
import type { StoreKit } from './kit.js';

/** How long `health()` waits for `select 1`. */
const HEALTH_TIMEOUT_MS = 2000;

/**
 * `select 1` within `HEALTH_TIMEOUT_MS`. `diskFullSince`: when a write last failed for a full
 * disk (`SqlStore`); while set, the store is reported degraded.
 */
export async function health(
  kit: StoreKit,
  diskFullSince: number | undefined,
): Promise<StoreHealth> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), HEALTH_TIMEOUT_MS);
  });
  // Never rejects, so a query that answers after the timeout leaves nothing unhandled.
  const answer = sql`select 1`.execute(kit.db).then(
    () => 'ok' as const,
    (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
  );
  try {
    const r = await Promise.race([answer, timedOut]);
    if (r === 'ok') {
      const ms = (performance.now() - started).toFixed(1);
      const answered = `select 1 answered in ${ms} ms`;
      if (diskFullSince !== undefined) {
        // Reads still work, but nothing can be written: not a manager to send work to.
        const since = new Date(diskFullSince).toISOString();
        return {
          ok: false,
          degraded: 'disk_full',
          detail: `${kit.kind}: the disk is full: writes are refused (507) since ${since} until space is freed and a write succeeds; reads work (${answered})`,
        };
      }
      return { ok: true, detail: `${kit.kind}: ${answered}` };
    }
    if (r === 'timeout') {
      return { ok: false, detail: `${kit.kind}: no answer within ${HEALTH_TIMEOUT_MS} ms` };
    }
    return { ok: false, detail: `${kit.kind}: ${r.message}` };
  } finally {
    clearTimeout(timer);
  }
}
