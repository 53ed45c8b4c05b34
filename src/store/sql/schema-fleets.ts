/** The fleets family's tables (see `fleets.ts`); part of `Database`. */
export interface FleetsTable {
  name: string;
  provider: string;
  /** The validated definition (JSON). */
  definition: string;
  paused_reason: string | null;
  created_at: number;
  updated_at: number;
}

export interface FleetMachinesTable {
  id: string;
  provider: string;
  fleet: string;
  worker: string;
  state: string;
  capacity: string;
  cost_per_hour: number | null;
  launched_at: number;
  registered_at: number | null;
  terminated_at: number | null;
  failure: string | null;
}

export interface FleetTables {
  fleets: FleetsTable;
  fleet_machines: FleetMachinesTable;
}
