import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { DroverError, invalid, notFound } from '../core/errors.js';

/** Stats a directory a caller asked about, mapping "missing" and "not a folder" to typed errors. */
export async function statDirectory(dir: string): Promise<Stats> {
  let stats: Stats;
  try {
    stats = await stat(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw notFound(`directory ${dir}`);
    throw new DroverError('unavailable', `cannot read ${dir}: ${(error as Error).message}`);
  }
  if (!stats.isDirectory()) throw invalid('path', `${dir} is not a directory`);
  return stats;
}
