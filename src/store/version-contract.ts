/**
 * The versions family of the store (issue 15: publishing): products, their numbered
 * versions and representations. Implemented by `src/store/sql/versions.ts` on both dialects
 * and tested by the conformance suite.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface VersionStore {}
