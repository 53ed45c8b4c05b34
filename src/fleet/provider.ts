/**
 * The contract between the scaler and the places render nodes come from (issue 12). One
 * contract, one conformance suite (`src/fleet/conformance.ts`): `local` starts `drover worker`
 * processes on this machine, `ec2` launches EC2 instances, and a Kubernetes provider (pods
 * running `drover worker`) fits the same shape.
 *
 * The scaler owns reconciliation: it decides how many machines a fleet should have and calls
 * `launch`/`terminate`; a provider does exactly what it is told and reports what exists. It
 * never decides to add or remove machines on its own (an EC2 fleet of type `instant`, not a
 * maintained one).
 *
 * Names: a machine's worker registers as `workerName(fleet, machineId)`, so the manager can
 * tell which worker a machine runs (and which machines never registered) without the provider
 * knowing worker names in advance (EC2 launches N identical instances with one user data).
 */
import type { ZodType } from 'zod';

/** Tags every launched machine carries (EC2 tags, process labels, pod labels). */
export const FARM_TAG = 'drover:farm';
export const FLEET_TAG = 'drover:fleet';

/** The worker name a machine of `fleet` registers with. */
export function workerName(fleet: string, machineId: string): string {
  return `${fleet}-${machineId}`;
}

/**
 * What a launched machine needs to start `drover worker` for its fleet. The token is a
 * worker token scoped to the pattern `<fleet>-<machineIdPrefix>*`: a secret, which a provider hands only to
 * the machine (process environment, user data) and never logs, returns or tags.
 */
export interface WorkerBoot {
  /** The manager addresses the worker talks to. */
  managerUrls: readonly string[];
  token: string;
  fleet: string;
  region: string;
  pools: readonly string[];
  groups: readonly string[];
  slots: number;
}

export interface LaunchRequest {
  /** The farm's identity (tag `drover:farm`): machines of another farm are never touched. */
  farm: string;
  fleet: string;
  region: string;
  count: number;
  /**
   * Idempotency: a retried launch with the same token launches nothing more and returns the
   * machines the first call launched (EC2 `ClientToken`).
   */
  clientToken: string;
  /** Spot (interruptible, cheaper) or on-demand capacity. */
  capacity: 'spot' | 'on-demand';
  boot: WorkerBoot;
  /** The provider's own settings for this fleet, as its `settingsSchema` parsed them. */
  settings: unknown;
}

export type MachineState = 'pending' | 'running' | 'stopping' | 'stopped';

export interface Machine {
  /** The provider's id (EC2 instance id, local process id token). */
  id: string;
  farm: string;
  fleet: string;
  state: MachineState;
  /** Epoch ms when it was launched (as the provider reports it). */
  launchedAt: number;
  capacity: 'spot' | 'on-demand';
}

export interface LaunchResult {
  machines: Machine[];
  /**
   * Capacity asked for but not launched, with the provider's message (EC2's per-override
   * errors: `InsufficientInstanceCapacity`, limits). The scaler records and backs off.
   */
  errors: { code: string; message: string }[];
}

/**
 * A provider error the scaler backs off from and records (throttling, capacity,
 * credentials). `message` is the provider's, with nothing secret in it.
 */
export class ProviderError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** Worth retrying after a back-off (throttling, capacity) rather than a settings fix. */
    readonly temporary: boolean,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}

export interface FleetProvider {
  /** `local`, `ec2`. */
  readonly kind: string;
  /**
   * How every machine id of this provider starts (`local-`, EC2's `i-`): a fleet's worker
   * token is scoped to `<fleet>-<prefix>*`, so it cannot act as a worker outside the fleet
   * whose name merely starts with the fleet's (fleet `us`, worker `us-west-2-1`).
   */
  readonly machineIdPrefix: string;
  /** Validates a fleet's provider settings; the parsed value is what `launch` receives. */
  readonly settingsSchema: ZodType;
  /** Launches `count` machines (idempotent per `clientToken`). */
  launch(request: LaunchRequest): Promise<LaunchResult>;
  /** Terminates machines by id; ids already gone are not an error. */
  terminate(farm: string, ids: readonly string[]): Promise<void>;
  /** Every machine tagged with `farm` that is not stopped: the scaler adopts or sweeps them. */
  list(farm: string): Promise<Machine[]>;
  /** Releases clients and timers (local: leaves running workers alone unless told). */
  close(): Promise<void>;
}
