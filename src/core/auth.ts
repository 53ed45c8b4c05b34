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
}

/** Who a request acts as. */
export interface Principal {
  tokenId: string;
  name: string;
  role: Role;
}
