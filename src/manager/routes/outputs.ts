import { createReadStream } from 'node:fs';
import { opendir, realpath, stat } from 'node:fs/promises';
import { extname, join, sep } from 'node:path';
import type { LatestOutputReply } from '../../api/replies.js';
import { invalid, notFound } from '../../core/errors.js';
import { mapPath, rulesFor } from '../../core/path-mapping.js';
import type { Farm } from '../farm.js';
import type { Handlers } from '../http/serve.js';

/**
 * Rendered images from a job's output directories, for the monitor's thumbnail:
 *
 *     GET /jobs/:id/outputs/latest          → { image: {directory, name, size, modifiedAt} | null }
 *     GET /jobs/:id/outputs/:directory/:name → the image (directory = index into outputDirectories)
 *
 * Only files directly inside one of the job's output directories, only image types a browser
 * shows (no SVG: it can carry script), only plain names (no separators, no `..`), and the file's
 * real path must still be inside the directory's real path (a symlink cannot lead out).
 * Anyone who may submit a job names its output directories, so a directory is served only
 * when its real path is inside one of the manager's output roots (`--output-root`; `drover
 * dev`: its current directory and its GFS). Without roots no image is served.
 * A directory is looked for as submitted and, failing that, as path mapping rewrites it for each
 * region (`drover dev` maps `/gfs/` to each site's folder).
 */

const imageTypes: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
};
/** Directory entries looked at for the newest image (a frame folder holds thousands). */
const MAX_SCAN = 20_000;
const MAX_IMAGE_BYTES = 64 * 1024 * 1024;

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** The real paths of `roots` that exist (a root made later is picked up on the next call). */
async function realRoots(roots: readonly string[]): Promise<string[]> {
  const real = await Promise.all(roots.map((r) => realpath(r).catch(() => undefined)));
  return real.filter((r): r is string => r !== undefined);
}

function inside(path: string, roots: readonly string[]): boolean {
  return roots.some(
    (root) => path === root || path.startsWith(root.endsWith(sep) ? root : root + sep),
  );
}

type OutputHandlers = Pick<Handlers, 'latestOutput' | 'outputImage'>;

export function outputHandlers(farm: Farm, outputRoots: readonly string[]): OutputHandlers {
  /**
   * The real path of one of a job's output directories on this manager's disk, if it is
   * there and inside an output root.
   */
  async function locate(directory: string): Promise<string | undefined> {
    const roots = await realRoots(outputRoots);
    if (roots.length === 0) return undefined;
    const allowed = async (path: string) => {
      if (!(await isDirectory(path))) return undefined;
      const real = await realpath(path).catch(() => undefined);
      return real !== undefined && inside(real, roots) ? real : undefined;
    };
    const found = await allowed(directory);
    if (found) return found;
    const rules = await farm.paths.listRules();
    const os = process.platform;
    for (const region of new Set(rules.map((r) => r.region))) {
      const mapped = mapPath(directory, rulesFor(rules, { region, os }), os);
      const real = mapped === directory ? undefined : await allowed(mapped);
      if (real) return real;
    }
    return undefined;
  }

  async function outputDirectories(id: string): Promise<string[]> {
    const job = await farm.store.fetchJob(id);
    if (!job) throw notFound(`job ${id}`);
    return job.outputDirectories;
  }

  const latestOutput: OutputHandlers['latestOutput'] = async ({ params: { id } }) => {
    let best: LatestOutputReply['image'] = null;
    for (const [index, wanted] of (await outputDirectories(id)).entries()) {
      const dir = await locate(wanted);
      if (!dir) continue;
      let seen = 0;
      for await (const entry of await opendir(dir)) {
        if (++seen > MAX_SCAN) break;
        if (!entry.isFile() || !(extname(entry.name).toLowerCase() in imageTypes)) continue;
        const s = await stat(join(dir, entry.name)).catch(() => undefined);
        if (!s) continue;
        // Newest first; on a tie (frames written within one clock tick) the later name.
        if (
          !best ||
          s.mtimeMs > best.modifiedAt ||
          (s.mtimeMs === best.modifiedAt && entry.name > best.name)
        ) {
          best = { directory: index, name: entry.name, size: s.size, modifiedAt: s.mtimeMs };
        }
      }
    }
    return { image: best };
  };

  const outputImage: OutputHandlers['outputImage'] = async ({
    params: { id, directory, name },
    reply,
  }) => {
    if (!(extname(name).toLowerCase() in imageTypes)) {
      throw invalid('name', 'must be an image (png, jpg, gif, webp, avif)');
    }
    const wanted = (await outputDirectories(id))[directory];
    const realDir = wanted === undefined ? undefined : await locate(wanted);
    if (!realDir) {
      throw notFound(
        outputRoots.length === 0
          ? 'images: this manager serves none (start it with --output-root)'
          : `output directory ${directory} of job ${id} (in this manager's output roots)`,
      );
    }
    let real: string;
    try {
      real = await realpath(join(realDir, name));
    } catch {
      throw notFound(`file ${name}`);
    }
    const s = await stat(real);
    if (!real.startsWith(realDir + sep) || !s.isFile() || s.size > MAX_IMAGE_BYTES) {
      throw notFound(`file ${name}`);
    }
    return reply
      .type(imageTypes[extname(name).toLowerCase()]!)
      .header('content-length', s.size)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "default-src 'none'; sandbox")
      .send(createReadStream(real));
  };

  return { latestOutput, outputImage };
}
