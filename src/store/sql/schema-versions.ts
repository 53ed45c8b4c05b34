/** The versions family's tables (see `versions.ts`); part of `Database`. */
export interface VersionTables {
  products: ProductsTable;
  versions: VersionsTable;
}

/** One row per product: its counter of allocated version numbers. */
export interface ProductsTable {
  name: string;
  last_version: number;
  created_at: number;
}

export interface VersionsTable {
  id: string;
  product: string;
  number: number;
  status: string;
  job_id: string | null;
  review_job_id: string | null;
  submitted_by: string;
  submitted_at: number;
  comment: string;
  folder: string;
  /** JSON: Representation[]. */
  representations: string;
  /** JSON: number[]. */
  missing_frames: string;
  thumbnail: string | null;
  movie: string | null;
  /** JSON: SceneSnapshot, or null. */
  scene: string | null;
  error: string;
  reviewed_by: string;
  reviewed_at: number | null;
  review_comment: string;
  updated_at: number;
}
