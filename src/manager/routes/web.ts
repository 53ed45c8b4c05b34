import { createReadStream, existsSync, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, normalize, relative, resolve, sep } from 'node:path';
import type { FastifyReply } from 'fastify';
import { API } from '../../api/contract.js';
import type { Handlers } from '../http/serve.js';

/**
 * The web monitor, served by the manager itself at `/` (no second server).
 *
 * `npm run build` compiles the server with tsc into `dist/` and the monitor with Vite into
 * `dist/web/` (index.html + content-hashed files under `assets/`). This module is
 * `src/manager/routes/web.ts` when run from source (tests) and `dist/manager/routes/web.js`
 * when compiled; both sit three folders below the package root, so the monitor is found at
 * `<package>/dist/web` either way.
 *
 * Hashed assets are cached for a year (`immutable`); index.html is revalidated on every load
 * so a new build shows up at once. Any other GET path that is not a file (a client route like
 * `/jobs/<id>`) answers index.html; paths under `/api/` never do.
 */
export const defaultWebRoot = resolve(import.meta.dirname, '..', '..', '..', 'dist', 'web');

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
};

/** The monitor talks only to its own origin; nothing may frame it. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "img-src 'self' data: blob:",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drover</title></head>
<body style="font: 14px system-ui, sans-serif; margin: 3em; color: #222">
<h1 style="font-size: 18px">Drover manager</h1>
<p>The web monitor is not built. Run <code>npm run build</code> in the Drover package
(it builds the server and the monitor into <code>dist/</code>), then reload.</p>
<p>The HTTP API is at <a href="${API}/health"><code>${API}</code></a>.</p>
</body></html>
`;

async function fileStats(path: string): Promise<Stats | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s : undefined;
  } catch {
    return undefined;
  }
}

function sendFile(
  reply: FastifyReply,
  ifNoneMatch: string | undefined,
  path: string,
  stats: Stats,
  cacheControl: string,
): FastifyReply {
  const etag = `W/"${stats.size.toString(16)}-${Math.floor(stats.mtimeMs).toString(16)}"`;
  reply
    .header('cache-control', cacheControl)
    .header('etag', etag)
    .header('x-content-type-options', 'nosniff');
  const type = contentTypes[extname(path).toLowerCase()] ?? 'application/octet-stream';
  if (type.startsWith('text/html')) {
    reply
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .header('referrer-policy', 'no-referrer');
  }
  if (ifNoneMatch === etag) return reply.status(304).send();
  return reply.type(type).header('content-length', stats.size).send(createReadStream(path));
}

/** Serves the built monitor at `/` with a client-route fallback to index.html. */
export function webHandlers(options: { root?: string } = {}): Pick<Handlers, 'monitor'> {
  const root = options.root ?? defaultWebRoot;
  const index = join(root, 'index.html');

  const monitor: Handlers['monitor'] = async ({ request: req, reply }) => {
    let path: string;
    try {
      path = decodeURIComponent(req.url.split('?')[0] ?? '/');
    } catch {
      return reply
        .status(400)
        .send({ error: { code: 'invalid_input', message: 'bad URL encoding', field: 'url' } });
    }
    if (path === '/api' || path.startsWith('/api/')) {
      return reply
        .status(404)
        .send({ error: { code: 'not_found', message: `no route ${req.method} ${path}` } });
    }
    const ifNoneMatch = req.headers['if-none-match'];
    if (!existsSync(index)) {
      return reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-cache')
        .send(notBuiltPage);
    }
    // Only files inside the build folder: `..` and NUL never get out of it.
    const file = join(root, normalize(path));
    const inside = relative(root, file);
    if (
      !path.includes('\0') &&
      inside !== '' &&
      !inside.startsWith('..') &&
      !inside.includes(`..${sep}`)
    ) {
      const stats = await fileStats(file);
      if (stats) {
        const hashed = inside.startsWith(`assets${sep}`);
        const cache = hashed ? 'public, max-age=31536000, immutable' : 'public, max-age=3600';
        return sendFile(
          reply,
          ifNoneMatch,
          file,
          stats,
          inside === 'index.html' ? 'no-cache' : cache,
        );
      }
      // A missing hashed file is a stale page asking for an old build: no HTML for a script.
      if (inside.startsWith(`assets${sep}`)) {
        return reply.status(404).send({ error: { code: 'not_found', message: `no file ${path}` } });
      }
    }
    const stats = await fileStats(index);
    if (!stats) return reply.type('text/html; charset=utf-8').send(notBuiltPage);
    return sendFile(reply, ifNoneMatch, index, stats, 'no-cache');
  };
  return { monitor };
}
