import type {
  Product,
  Representation,
  SceneSnapshot,
  Version,
  VersionStatus,
} from '../core/versions.js';

/** A new version: its number is allocated by the store, its folder follows from the number. */
export interface NewVersion {
  product: string;
  submittedBy: string;
  comment: string;
  /**
   * The version's folder for its allocated number (the folder template resolved and checked
   * by the caller; pure, run inside the allocating transaction). Throwing rolls back.
   */
  folderOf: (number: number) => string;
  jobId?: string | null;
  scene?: SceneSnapshot | null;
}

/** What the publish flow records on a version as it goes (absent fields are left alone). */
export interface VersionChanges {
  status?: VersionStatus;
  jobId?: string | null;
  reviewJobId?: string | null;
  representations?: Representation[];
  missingFrames?: number[];
  thumbnail?: string | null;
  movie?: string | null;
  scene?: SceneSnapshot | null;
  error?: string;
}

export interface VersionQuery {
  product?: string;
  /** Every status; by default only approved versions (the loader's view). */
  all?: boolean;
  limit?: number;
  /** Versions with a number below this (newest first paging). */
  before?: number;
}

/**
 * The versions family of the store (issue 15: publishing): products, their numbered
 * versions and representations. Implemented by `src/store/sql/versions.ts` on both dialects
 * and tested by the conformance suite (`src/store/conformance/versions.ts`). Every change
 * appends its event (`version.created`, `version.updated`, `version.ready`,
 * `version.incomplete`, `version.failed`, `version.approved`, `version.rejected`) in its
 * transaction.
 */
export interface VersionStore {
  /**
   * Allocates the product's next number (v001 first) and creates the version `rendering`, in
   * one transaction. Two calls never get the same number, on either store, with any number
   * of managers: a per-product counter row is advanced in one statement, and (product,
   * number) and the folder are unique. A folder another version has is a conflict.
   */
  create(input: NewVersion): Promise<Version>;
  fetch(id: string): Promise<Version | undefined>;
  /** The version made by this render job or review job. */
  fetchByJob(jobId: string): Promise<Version | undefined>;
  /** Newest first. */
  list(query: VersionQuery): Promise<Version[]>;
  listProducts(options?: { prefix?: string; limit?: number }): Promise<Product[]>;
  /** The newest approved version of a product. */
  latestApproved(product: string): Promise<Version | undefined>;
  /** Records what the publish flow learnt; the event type says what happened. */
  update(id: string, changes: VersionChanges, event?: VersionEventType): Promise<Version>;
  /**
   * A reviewer's decision: `approved` or `rejected`, from `pending review`, `approved` or
   * `rejected` only (a conflict otherwise).
   */
  review(
    id: string,
    decision: 'approved' | 'rejected',
    by: string,
    comment: string,
  ): Promise<Version>;
}

export type VersionEventType =
  | 'version.created'
  | 'version.updated'
  | 'version.ready'
  | 'version.incomplete'
  | 'version.failed'
  | 'version.approved'
  | 'version.rejected';
