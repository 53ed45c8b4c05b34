/**
 * The fleets family of the store (issue 12: autoscaling): fleet definitions, their machines
 * and the scaler's decisions. Implemented by `src/store/sql/fleets.ts` on both dialects and
 * tested by the conformance suite.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface FleetStore {}
