import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { sep } from 'node:path';
import type { FastifyReply } from 'fastify';
import type { versionRoutes } from '../../api/version-routes.js';
import type { Principal } from '../../core/auth.js';
import { DroverError, notFound } from '../../core/errors.js';
import { defaultConfig } from '../../core/plugin-config.js';
import type { Version } from '../../core/versions.js';
import {
  PUBLISH_PLUGIN,
  managerPath,
  publishConfigEntries,
  publishSettings,
} from '../../events/plugins/publish/config.js';
import type { Farm } from '../farm.js';
import type { HandlersOf } from '../http/serve.js';
import { publishExisting } from '../publish.js';
import { webmOf } from '../../events/plugins/publish/review.js';

/** A movie or thumbnail larger than this is not served (review media are small). */
const MAX_MEDIA_BYTES = 4 * 1024 * 1024 * 1024;

/**
 * One byte range of a file of `size` bytes from a `Range` header (`bytes=0-99`, `bytes=100-`,
 * `bytes=-500`): the whole file without one, undefined when it cannot be satisfied. Several
 * ranges in one header are answered with the first (browsers ask for one).
 */
export function byteRange(
  header: string | undefined,
  size: number,
): { start: number; end: number; partial: boolean } | undefined {
  if (!header) return { start: 0, end: size - 1, partial: false };
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*(?:,.*)?$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return undefined;
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return undefined;
  return { start, end, partial: true };
}

/** The versions' routes (`src/api/version-routes.ts`). */
export function versionHandlers(farm: Farm): HandlersOf<typeof versionRoutes> {
  const versions = farm.store.versions;

  async function fetchVersion(id: string): Promise<Version> {
    const v = await versions.fetch(id);
    if (!v) throw notFound(`version ${id}`);
    return v;
  }

  /** Reviewing is the submitter's (a user token's own versions) or an admin's. */
  async function review(
    id: string,
    decision: 'approved' | 'rejected',
    comment: string,
    principal: Principal | undefined,
  ) {
    const v = await fetchVersion(id);
    if (principal && principal.role !== 'admin' && v.submittedBy !== principal.name) {
      throw new DroverError(
        'forbidden',
        `version ${v.product} ${v.name} was submitted by ${v.submittedBy || 'nobody named'}: only its submitter or an admin may approve or reject it`,
      );
    }
    return { version: await versions.review(id, decision, principal?.name ?? '', comment) };
  }

  /** A version's media file on this manager's disk, inside its version folder. */
  async function mediaFile(v: Version, path: string | null, what: string) {
    if (!path) throw notFound(`${what} of version ${v.product} ${v.name} (not made yet)`);
    const saved = (await farm.store.listPluginSettings()).find((s) => s.name === PUBLISH_PLUGIN);
    const settings = publishSettings({ ...defaultConfig(publishConfigEntries), ...saved?.config });
    const rules = await farm.paths.listRules();
    const [real, realFolder] = await Promise.all([
      realpath(managerPath(path, rules, settings)).catch(() => undefined),
      realpath(managerPath(v.folder, rules, settings)).catch(() => undefined),
    ]);
    // The file's real path must be inside the version folder's: a link cannot lead out.
    if (!real || !realFolder || !real.startsWith(realFolder + sep)) {
      throw notFound(`${what} of version ${v.product} ${v.name}`);
    }
    const s = await stat(real);
    if (!s.isFile() || s.size > MAX_MEDIA_BYTES) throw notFound(`${what} of version ${v.id}`);
    return { real, size: s.size };
  }

  function media(reply: FastifyReply, type: string) {
    return reply
      .type(type)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "default-src 'none'; sandbox");
  }

  return {
    listProducts: async ({ query }) => ({
      products: await versions.listProducts({
        ...(query.prefix ? { prefix: query.prefix } : {}),
        limit: query.limit,
      }),
    }),
    listVersions: async ({ query }) => ({
      versions: await versions.list({
        ...(query.product ? { product: query.product } : {}),
        all: query.all === 'true',
        limit: query.limit,
        ...(query.before !== undefined ? { before: query.before } : {}),
      }),
    }),
    latestVersion: async ({ query }) => ({
      version: (await versions.latestApproved(query.product)) ?? null,
    }),
    getVersion: async ({ params }) => ({ version: await fetchVersion(params.id) }),
    approveVersion: ({ params, body, principal }) =>
      review(params.id, 'approved', body.comment, principal),
    rejectVersion: ({ params, body, principal }) =>
      review(params.id, 'rejected', body.comment, principal),
    publishFolder: async ({ body, principal, reply }) => {
      const version = await publishExisting(farm, body, principal);
      void reply.status(201);
      return { version };
    },
    versionThumbnail: async ({ params, reply }) => {
      const v = await fetchVersion(params.id);
      const file = await mediaFile(v, v.thumbnail, 'thumbnail');
      return media(reply, 'image/jpeg')
        .header('content-length', file.size)
        .send(createReadStream(file.real));
    },
    versionMovie: async ({ params, query, headers, reply }) => {
      const v = await fetchVersion(params.id);
      const webm = query.format === 'webm';
      const file = await mediaFile(v, v.movie && webm ? webmOf(v.movie) : v.movie, 'movie');
      const range = byteRange(headers.range, file.size);
      const r = media(reply, webm ? 'video/webm' : 'video/mp4').header('accept-ranges', 'bytes');
      if (!range) {
        return r.status(416).header('content-range', `bytes */${file.size}`).send();
      }
      if (range.partial) {
        void r
          .status(206)
          .header('content-range', `bytes ${range.start}-${range.end}/${file.size}`);
      }
      return r
        .header('content-length', range.end - range.start + 1)
        .send(createReadStream(file.real, { start: range.start, end: range.end }));
    },
  };
}
