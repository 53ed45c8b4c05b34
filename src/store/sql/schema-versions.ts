/** The versions family's tables (see `versions.ts`); part of `Database`. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface VersionTables {}
