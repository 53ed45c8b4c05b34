/** The fleets family's tables (see `fleets.ts`); part of `Database`. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface FleetTables {}
