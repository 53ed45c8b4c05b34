/**
 * The fleets family of the store (issue 12: autoscaling): fleet definitions, their machines
 * and the scaler's decisions. Implemented by `src/store/sql/fleets.ts` on both dialects and
 * tested by the conformance suite. The decisions themselves are `fleet.*` events in the
 * event log, written with the change they cause.
 */
import type { Fleet, FleetDefinition, FleetMachine, FleetMachineState } from '../core/fleet.js';

export interface FleetStore {
  /** Creates a fleet; a conflict when the name is taken. Records `fleet.changed`. */
  createFleet(definition: FleetDefinition): Promise<Fleet>;
  /**
   * Replaces a fleet's definition (its name and provider stay); `resume` clears a pause.
   * Not found when there is no such fleet. Records `fleet.changed`.
   */
  updateFleet(definition: FleetDefinition, options?: { resume?: boolean }): Promise<Fleet>;
  /**
   * Deletes a fleet that has no live machine (set its max to 0 and let it drain first): a
   * conflict otherwise, so no machine is ever left unmanaged. Records `fleet.changed`.
   */
  deleteFleet(name: string): Promise<void>;
  fetchFleet(name: string): Promise<Fleet | undefined>;
  listFleets(): Promise<Fleet[]>;
  /** The scaler paused the fleet (too many machines never registered), with why. */
  pauseFleet(name: string, reason: string): Promise<Fleet>;

  /**
   * Keeps machines a provider launched (or that the scaler adopted); a machine already kept
   * (same provider and id) is left as it is, so a retried launch records nothing twice.
   * `event` is recorded in the same transaction when at least one machine was new.
   */
  recordMachines(
    machines: readonly FleetMachine[],
    event?: { type: 'fleet.launched'; data: Record<string, unknown> },
  ): Promise<FleetMachine[]>;
  /** Moves a machine to `state` (with a failure reason, or its registration time). */
  setMachineState(
    provider: string,
    id: string,
    state: FleetMachineState,
    details?: { failure?: string; at?: number },
  ): Promise<FleetMachine | undefined>;
  /**
   * Machines, newest first: of one fleet or all; `live` = not terminated; terminated ones
   * only since `since` (epoch ms) when given. At most `limit` (default 1000).
   */
  listMachines(query?: {
    fleet?: string;
    live?: boolean;
    since?: number;
    limit?: number;
  }): Promise<FleetMachine[]>;

  /**
   * Per job, its queued tasks interrupted at least `min` times (they prefer on-demand
   * fleets). Jobs without such tasks are left out.
   */
  interruptedQueuedTasks(min: number): Promise<Map<string, number>>;
}
