/**
 * The versions' HTTP routes (see `routes.ts`, which spreads them into the one route table):
 * declared like every other route, with their access.
 *
 * Reading products and versions needs `read`. Approving or rejecting needs `user`, and a
 * user may review only versions it submitted (an admin any): checked by the handler, as the
 * contract's ownership rules name jobs and workers only. Publishing an existing folder needs
 * `user`. The media (thumbnail, movie) take the token in the query too, for `<img>` and
 * `<video>`, and answer HTTP Range requests so a browser can seek. (No `satisfies Record<string,
 * RouteDef>`: it would widen the routes without parameters and lose their inputs' types.)
 */
import { z } from 'zod';
import { absolutePath } from '../core/job-spec.js';
import { text } from '../core/text.js';
import { productProblem } from '../core/versions.js';
import { route } from './contract.js';
import * as r from './version-replies.js';
import { opaqueReply } from './replies.js';

const productPath = text().superRefine((p, ctx) => {
  const problem = productProblem(p);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const versionId = z.object({
  id: text()
    .min(1)
    .max(64)
    .regex(/^[0-9a-f]+$/, 'must be a version id (hex digits)'),
});
const queryToken = text().max(200).optional();
const decision = z.object({ comment: text().max(4096).default('') }).strict();

export const versionRoutes = {
  listProducts: route({
    name: 'listProducts',
    method: 'GET',
    path: '/products',
    summary: 'Products (published outputs) with their latest version numbers',
    access: 'read',
    query: z.object({
      prefix: productPath.optional(),
      limit: z.coerce.number().int().min(1).max(1000).default(1000),
    }),
    reply: r.productListReply,
  }),
  listVersions: route({
    name: 'listVersions',
    method: 'GET',
    path: '/versions',
    summary: 'Versions, newest first: approved only unless all=true',
    access: 'read',
    query: z.object({
      product: productPath.optional(),
      all: z.enum(['true', 'false']).default('false'),
      limit: z.coerce.number().int().min(1).max(1000).default(100),
      before: z.coerce.number().int().min(1).max(1_000_000_000).optional(),
    }),
    reply: r.versionListReply,
  }),
  latestVersion: route({
    name: 'latestVersion',
    method: 'GET',
    path: '/versions/latest',
    summary: "A product's newest approved version (null when none is approved)",
    access: 'read',
    query: z.object({ product: productPath }),
    reply: r.latestVersionReply,
  }),
  getVersion: route({
    name: 'getVersion',
    method: 'GET',
    path: '/versions/:id',
    summary: 'One version: status, representations, review media, scene snapshot',
    access: 'read',
    params: versionId,
    reply: r.versionReply,
  }),
  approveVersion: route({
    name: 'approveVersion',
    method: 'POST',
    path: '/versions/:id/approve',
    summary: 'Approve a version (its submitter or an admin)',
    access: 'user',
    params: versionId,
    body: decision,
    reply: r.versionReply,
  }),
  rejectVersion: route({
    name: 'rejectVersion',
    method: 'POST',
    path: '/versions/:id/reject',
    summary: 'Reject a version (its submitter or an admin)',
    access: 'user',
    params: versionId,
    body: decision,
    reply: r.versionReply,
  }),
  publishFolder: route({
    name: 'publishFolder',
    method: 'POST',
    path: '/versions',
    summary:
      'Publish an existing folder (inside the publish roots) as the next version of a product, without copying',
    access: 'user',
    body: z
      .object({
        folder: absolutePath,
        product: productPath,
        comment: text().max(4096).default(''),
      })
      .strict(),
    reply: r.versionReply,
    status: 201,
  }),
  versionThumbnail: route({
    name: 'versionThumbnail',
    method: 'GET',
    path: '/versions/:id/thumbnail',
    summary: "A version's thumbnail (JPEG)",
    access: 'read',
    tokenInQuery: true,
    params: versionId,
    query: z.object({ token: queryToken }),
    reply: opaqueReply,
    replyKind: 'image',
  }),
  versionMovie: route({
    name: 'versionMovie',
    method: 'GET',
    path: '/versions/:id/movie',
    summary:
      "A version's review movie: H.264 MP4, or VP9 WebM with format=webm (browsers without H.264), with HTTP Range support for seeking",
    access: 'read',
    tokenInQuery: true,
    params: versionId,
    query: z.object({ token: queryToken, format: z.enum(['mp4', 'webm']).default('mp4') }),
    headers: z.object({
      range: text().max(200).optional().meta({ description: 'bytes=START-END (one range)' }),
    }),
    reply: opaqueReply,
    replyKind: 'video',
  }),
} as const;
