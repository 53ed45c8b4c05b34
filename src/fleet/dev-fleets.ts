import type { FleetInput } from '../core/fleet.js';
import { SCALER_PLUGIN } from '../events/plugins/scaler/index.js';
import type { Farm } from '../manager/farm.js';

/** The fleet `drover dev --autoscale` makes for a region (fleet names are lower-case). */
export function devFleetName(region: string): string {
  return (
    region
      .toLowerCase()
      .replace(/[^a-z0-9_.-]/g, '-')
      .slice(0, 48) || 'local'
  );
}

export interface DevFleetOptions {
  /** Most workers per region. */
  max: number;
  idleShutdownS: number;
  slots: number;
  /** Seconds a launched worker has to register (local processes start in about a second). */
  registerTimeoutS?: number;
}

/**
 * `drover dev --autoscale`: one `local` fleet per region (kept as the user changed it when
 * it exists already) and the scaler plugin Global. Returns the fleets' names.
 */
export async function ensureDevFleets(
  farm: Farm,
  regions: readonly string[],
  o: DevFleetOptions,
): Promise<string[]> {
  const names: string[] = [];
  for (const region of regions) {
    const name = devFleetName(region);
    names.push(name);
    if (await farm.store.fleets.fetchFleet(name)) continue;
    const input: FleetInput = {
      name,
      provider: 'local',
      region,
      min: 0,
      max: o.max,
      slots: o.slots,
      idleShutdownS: o.idleShutdownS,
      scaleOutPerMinute: 30,
      capacity: 'on-demand',
      // Nominal, so the accounting has something to add up on the miniature farm.
      costPerHour: 0.1,
      settings: { drainTimeout: 5, logLevel: 'info' },
    };
    await farm.fleets.create(input);
  }
  await farm.plugins?.configure(SCALER_PLUGIN, {
    state: 'global',
    config: { registerTimeout: o.registerTimeoutS ?? 60 },
  });
  return names;
}

/**
 * Stops every live machine of every fleet (the miniature farm's Ctrl-C: its workers should
 * not outlive it). Workers are asked to stop (they hand back what they hold).
 */
export async function stopAllMachines(farm: Farm): Promise<number> {
  let farmId = '';
  try {
    const config = farm.plugins?.show(SCALER_PLUGIN).config;
    farmId = typeof config?.farmId === 'string' ? config.farmId : '';
  } catch {
    return 0;
  }
  if (!farmId) return 0;
  const machines = await farm.store.fleets.listMachines({ live: true });
  for (const m of machines) {
    const provider = farm.fleets.providers.get(m.provider);
    if (!provider) continue;
    await provider.terminate(farmId, [m.id]);
    await farm.store.fleets.setMachineState(m.provider, m.id, 'terminated');
  }
  return machines.length;
}
