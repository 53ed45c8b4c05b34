import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PNG } from 'pngjs';

/**
 * The file a frame goes to: each run of `#` in `pattern` becomes the frame number
 * zero-padded to the run's length (`frame_####.png`, 12 → `frame_0012.png`; -5 →
 * `frame_-0005.png`). A frame wider than the padding is written in full.
 */
export function framePath(pattern: string, frame: number): string {
  return pattern.replace(/#+/g, (run) => padFrame(frame, run.length));
}

export function padFrame(frame: number, width: number): string {
  const digits = String(Math.abs(frame)).padStart(width, '0');
  return frame < 0 ? `-${digits}` : digits;
}

/**
 * Writes an RGBA image as a PNG, creating the folder if needed. The bytes go to a hidden
 * temporary name in the same folder first and are renamed into place, so a reader (a
 * compositor, the GFS replicator, a publish plugin) never sees a half-written frame.
 */
export async function writePng(
  path: string,
  rgba: Buffer,
  width: number,
  height: number,
): Promise<void> {
  if (rgba.length !== width * height * 4) {
    throw new Error(`image buffer holds ${rgba.length} bytes, not ${width}x${height} RGBA`);
  }
  const png = new PNG({ width, height });
  png.data = rgba;
  const bytes = PNG.sync.write(png);
  const folder = dirname(path);
  await mkdir(folder, { recursive: true });
  const temp = join(folder, `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temp, bytes);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
