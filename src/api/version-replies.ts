/**
 * The reply shapes of the versions' routes (see `replies.ts` for the rest), each tied to the
 * domain type it describes.
 */
import { z } from 'zod';
import { text } from '../core/text.js';
import {
  versionStatuses,
  type Product,
  type Representation,
  type SceneSnapshot,
  type Version,
} from '../core/versions.js';

const time = z.number().int().meta({ description: 'milliseconds since the Unix epoch' });

export const representation = z
  .object({
    name: text(),
    ext: text(),
    pattern: text().meta({ description: 'the sequence in # notation, or the file name' }),
    frames: text().meta({ description: 'frames present, e.g. 1001-1024 (empty for a file)' }),
    first: z.number().int().nullable(),
    last: z.number().int().nullable(),
    padding: z.number().int(),
    fileCount: z.number().int(),
    bytes: z.number().int(),
  })
  .meta({ id: 'Representation' }) satisfies z.ZodType<Representation>;

const scene = z.object({
  source: text(),
  path: text(),
  sha256: text(),
}) satisfies z.ZodType<SceneSnapshot>;

export const version = z
  .object({
    id: text(),
    product: text(),
    number: z.number().int(),
    name: text().meta({ description: 'v001, v002, …' }),
    status: z.enum(versionStatuses),
    jobId: text().nullable(),
    reviewJobId: text().nullable(),
    submittedBy: text(),
    submittedAt: time,
    comment: text(),
    folder: text(),
    representations: z.array(representation),
    missingFrames: z.array(z.number().int()),
    thumbnail: text().nullable(),
    movie: text().nullable(),
    scene: scene.nullable(),
    error: text(),
    reviewedBy: text(),
    reviewedAt: time.nullable(),
    reviewComment: text(),
    updatedAt: time,
  })
  .meta({ id: 'Version' }) satisfies z.ZodType<Version>;

export const product = z
  .object({
    name: text(),
    lastVersion: z.number().int(),
    latestApproved: z.number().int().nullable(),
    versionCount: z.number().int(),
    createdAt: time,
  })
  .meta({ id: 'Product' }) satisfies z.ZodType<Product>;

export const versionReply = z.object({ version });
export const latestVersionReply = z.object({ version: version.nullable() });
export const versionListReply = z.object({ versions: z.array(version) });
export const productListReply = z.object({ products: z.array(product) });

export type VersionReply = z.output<typeof versionReply>;
export type VersionListReply = z.output<typeof versionListReply>;
export type ProductListReply = z.output<typeof productListReply>;
export type LatestVersionReply = z.output<typeof latestVersionReply>;
