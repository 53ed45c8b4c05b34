/** The manager's timing settings, with production defaults. Tests shorten them. */
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
}

export const defaultManagerSettings: ManagerSettings = {
  heartbeatIntervalMs: 5_000,
  // Six missed heartbeats: a busy worker or a short network blip never loses its task.
  leaseTtlMs: 30_000,
  stallAfterMs: 60_000,
  houseKeepingIntervalMs: 2_000,
  houseCleaningIntervalMs: 60_000,
};
