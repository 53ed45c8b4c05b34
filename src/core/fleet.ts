/**
 * Fleets (issue 12): a set of workers a provider starts and stops for one region and some
 * pools/groups. An admin defines them; the scaler (`src/fleet/scaler.ts`) decides how many
 * machines each should have.
 *
 * - member: a worker a fleet's machine runs; it registers as `<fleet>-<machine id>`.
 * - standby: idle members kept warm beyond the demand.
 * - draining: a member chosen for scale-in; it takes no new task and is stopped when its
 *   running tasks end (a busy worker is never killed).
 */
import { z } from 'zod';
import { text } from './text.js';

/** Fleet names make worker names (`<fleet>-<id>`) and token patterns (`<fleet>-<machine id prefix>*`). */
export const FLEET_NAME = /^[a-z0-9][a-z0-9_.-]{0,47}$/;
const shortName = text()
  .trim()
  .min(1)
  .max(128)
  .regex(/^[^\s,*]+$/, 'must not contain spaces, commas or *');

export const fleetCapacities = ['spot', 'on-demand'] as const;
export type FleetCapacity = (typeof fleetCapacities)[number];

/** The most machines one fleet may have (a typo of 10000 must not launch 10,000 instances). */
export const MAX_FLEET_SIZE = 1000;

const fleetFields = {
  name: text()
    .trim()
    .regex(
      FLEET_NAME,
      'lower-case letters, digits, . _ - (at most 48, starting with a letter or digit)',
    ),
  provider: text()
    .trim()
    .regex(/^[a-z0-9-]{1,32}$/, 'a provider name such as local or ec2'),
  region: shortName,
  pools: z.array(shortName).max(64).default([]),
  groups: z.array(shortName).max(64).default([]),
  capabilities: z
    .object({
      cpus: z.number().int().min(0).max(100_000).default(0),
      memoryMb: z.number().int().min(0).max(1_000_000_000).default(0),
      gpus: z.number().int().min(0).max(1024).default(0),
      os: text().max(64).default('linux'),
    })
    .strict()
    .default({ cpus: 0, memoryMb: 0, gpus: 0, os: 'linux' }),
  slots: z.number().int().min(1).max(256).default(1),
  min: z.number().int().min(0).max(MAX_FLEET_SIZE).default(0),
  max: z.number().int().min(0).max(MAX_FLEET_SIZE),
  standby: z.number().int().min(0).max(MAX_FLEET_SIZE).default(0),
  /** Machines launched per minute at most (Deadline Cloud's `scaleOutWorkersPerMinute`). */
  scaleOutPerMinute: z.number().int().min(1).max(10_000).default(10),
  /** A member idle this long since its last finished task is stopped (above `min`/standby). */
  idleShutdownS: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 3600)
    .default(300),
  /** Cost of one machine per hour (any currency), for the cost cap and the accounting. */
  costPerHour: z.number().min(0).max(1_000_000).optional(),
  /** The fleet launches nothing that would take its running cost per hour above this. */
  costCapPerHour: z.number().min(0).max(100_000_000).optional(),
  capacity: z.enum(fleetCapacities).default('spot'),
  /** The provider's own settings, validated by its `settingsSchema`. */
  settings: z.record(text().min(1).max(128), z.unknown()).default({}),
};

function checkBounds(
  f: {
    min?: number;
    max?: number;
    standby?: number;
    costCapPerHour?: number;
    costPerHour?: number;
  },
  ctx: z.RefinementCtx,
): void {
  if (f.min !== undefined && f.max !== undefined && f.min > f.max) {
    ctx.addIssue({ code: 'custom', path: ['min'], message: `must be at most max (${f.max})` });
  }
  if (f.standby !== undefined && f.max !== undefined && f.standby > f.max) {
    ctx.addIssue({ code: 'custom', path: ['standby'], message: `must be at most max (${f.max})` });
  }
  if (f.costCapPerHour !== undefined && f.costPerHour === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['costCapPerHour'],
      message: 'needs costPerHour (the cost of one machine per hour)',
    });
  }
}

/** A fleet definition as an admin sends it. */
export const fleetSchema = z.object(fleetFields).strict().superRefine(checkBounds);
export type FleetInput = z.input<typeof fleetSchema>;
export type FleetDefinition = z.output<typeof fleetSchema>;

/** Changes to a fleet (its name and provider stay). */
export const fleetChangesSchema = z
  .object({
    region: fleetFields.region.optional(),
    pools: z.array(shortName).max(64).optional(),
    groups: z.array(shortName).max(64).optional(),
    capabilities: fleetFields.capabilities.optional(),
    slots: z.number().int().min(1).max(256).optional(),
    min: z.number().int().min(0).max(MAX_FLEET_SIZE).optional(),
    max: z.number().int().min(0).max(MAX_FLEET_SIZE).optional(),
    standby: z.number().int().min(0).max(MAX_FLEET_SIZE).optional(),
    scaleOutPerMinute: z.number().int().min(1).max(10_000).optional(),
    idleShutdownS: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .optional(),
    costPerHour: z.number().min(0).max(1_000_000).nullable().optional(),
    costCapPerHour: z.number().min(0).max(100_000_000).nullable().optional(),
    capacity: z.enum(fleetCapacities).optional(),
    settings: z.record(text().min(1).max(128), z.unknown()).optional(),
    /** `false` resumes a fleet the scaler paused (too many machines failed to register). */
    paused: z.literal(false).optional(),
  })
  .strict();
export type FleetChanges = z.output<typeof fleetChangesSchema>;

/** A fleet as stored and shown. */
export interface Fleet extends FleetDefinition {
  /** Why the scaler paused it (too many machines never registered), or null. */
  pausedReason: string | null;
  createdAt: number;
  updatedAt: number;
}

/** A fleet with `changes` applied, checked again whole (min ≤ max holds after the change). */
export function applyFleetChanges(fleet: FleetDefinition, changes: FleetChanges): FleetDefinition {
  const { paused: _paused, costPerHour, costCapPerHour, ...rest } = changes;
  const next: Record<string, unknown> = { ...fleet, ...rest };
  if (costPerHour === null) delete next.costPerHour;
  else if (costPerHour !== undefined) next.costPerHour = costPerHour;
  if (costCapPerHour === null) delete next.costCapPerHour;
  else if (costCapPerHour !== undefined) next.costCapPerHour = costCapPerHour;
  return fleetSchema.parse(next);
}

export const machineStates = [
  /** Launched; its worker has not registered yet. */
  'booting',
  /** Its worker registered. */
  'running',
  /** Chosen for scale-in: takes no new task; stopped when its running tasks end. */
  'draining',
  /** Termination asked of the provider. */
  'terminated',
] as const;
export type FleetMachineState = (typeof machineStates)[number];

/** A machine a fleet launched (or adopted), as the store keeps it. */
export interface FleetMachine {
  /** The provider's id. */
  id: string;
  fleet: string;
  provider: string;
  /** The worker name it registers as (`<fleet>-<id>`). */
  worker: string;
  state: FleetMachineState;
  capacity: FleetCapacity;
  /** The fleet's cost per hour when it was launched (for the accounting), or null. */
  costPerHour: number | null;
  launchedAt: number;
  registeredAt: number | null;
  terminatedAt: number | null;
  /** Why it was terminated other than by scale-in (never registered, interrupted, orphan). */
  failure: string | null;
}

/** What the scaler last decided for a fleet, with its inputs (also a `fleet.decision` event). */
export interface FleetDecision {
  fleet: string;
  at: number;
  /** Dispatchable tasks a member of this fleet may take now, assigned to this fleet. */
  demand: number;
  /** Members registered and idle (not draining). */
  idle: number;
  /** Members rendering. */
  busy: number;
  /** Machines launched whose worker has not registered yet. */
  booting: number;
  draining: number;
  /** Machines the fleet should have (members + booting, draining excluded). */
  target: number;
  /** Machines launched by this decision. */
  launch: number;
  /** Members marked draining by this decision. */
  drain: string[];
  reason: string;
}

/** Work that no fleet may run, and why (shown by the monitor; it scales nothing). */
export interface UnservedWork {
  jobId: string;
  tasks: number;
  reason: string;
}

export interface FleetStatus {
  /** Machines not terminated, by state. */
  booting: number;
  running: number;
  draining: number;
  /** The last decision, or null before the scaler looked at the fleet. */
  decision: FleetDecision | null;
  /** Cost per hour of its live machines now (with `costPerHour`). */
  costPerHourNow: number;
  /** Machine-hours times cost, of the machines the store still lists (the accounting). */
  costHours: number;
  machineHours: number;
}

export interface FleetView extends Fleet {
  status: FleetStatus;
}
