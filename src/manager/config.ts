import type { Role } from '../core/auth.js';

/** The manager's timing and budget settings, with production defaults. Tests shorten them. */
export interface ManagerSettings {
  /** How often workers heartbeat (told to them when they register). */
  heartbeatIntervalMs: number;
  /** A claimed task's lease lasts this long past the last heartbeat that named it. */
  leaseTtlMs: number;
  /** A worker silent this long is marked stalled and its tasks requeued. */
  stallAfterMs: number;
  /** How often house keeping (lease expiry, stalled workers) runs. */
  houseKeepingIntervalMs: number;
  /** How often event plugins' house-cleaning handlers run (Deadline: every 60 s). */
  houseCleaningIntervalMs: number;
  /**
   * The most frames one job may have, per role of the submitting token (`user` also applies
   * to requests without one). Admins are exempt; the core's absolute bound
   * (`MAX_FRAMES_PER_JOB`) holds for everyone. `drover manager --max-frames-user N`.
   */
  maxFramesPerJob: Partial<Record<Role, number>>;
  /**
   * House keeping deletes the tasks and logs of jobs deleted this long ago (Deadline's
   * auto clean-up of deleted jobs). `drover manager --purge-deleted-after 7d`.
   */
  purgeDeletedAfterMs: number;
}

export const defaultManagerSettings: ManagerSettings = {
  heartbeatIntervalMs: 5_000,
  // Six missed heartbeats: a busy worker or a short network blip never loses its task.
  leaseTtlMs: 30_000,
  stallAfterMs: 60_000,
  houseKeepingIntervalMs: 2_000,
  houseCleaningIntervalMs: 60_000,
  maxFramesPerJob: { user: 1_000_000 },
  purgeDeletedAfterMs: 7 * 24 * 60 * 60_000,
};
