/**
 * Roles, in the farm's words:
 * - admin: everything, including plugin configuration, path mapping, limits, worker
 *   enable/disable and tokens;
 * - user: reads the farm, submits jobs (as itself) and acts on its own jobs only;
 * - worker: the worker protocol only (register, heartbeat, work, logs, reports);
 * - read-only: reads the farm, changes nothing.
 */
export const roles = ['admin', 'user', 'worker', 'read-only'] as const;
export type Role = (typeof roles)[number];

export interface TokenInfo {
  id: string;
  name: string;
  role: Role;
  createdAt: number;
  revokedAt: number | null;
  /**
   * For worker tokens, the worker names the token may act as: a pattern in which `*` matches
   * any run of characters (`render-*`, `render-07`); `*` (the default) is any worker.
   */
  workers: string;
}

/** Who a request acts as. */
export interface Principal {
  tokenId: string;
  name: string;
  role: Role;
  /** The worker-name pattern of a worker token (see `TokenInfo.workers`). */
  workers: string;
}

/** A worker-name pattern: what a worker name may hold (no spaces or commas), plus `*`. */
export const WORKER_PATTERN = /^[^\s,]{1,128}$/;

/** Whether worker `name` matches `pattern`, in which `*` matches any run of characters. */
export function workerMatches(pattern: string, name: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === name;
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (name.length < first.length + last.length) return false;
  if (!name.startsWith(first) || !name.endsWith(last)) return false;
  // The parts between stars, each leftmost after the one before, within the middle.
  const end = name.length - last.length;
  let at = first.length;
  for (const mid of parts.slice(1, -1)) {
    const i = name.indexOf(mid, at);
    if (i < 0 || i + mid.length > end) return false;
    at = i + mid.length;
  }
  return true;
}
