/**
 * The replicator's ledger: every entry (folder or file) the simulated GFS knows, identified by
 * where it was first seen (origin site + origin path), with its path and latest replication
 * time at each site. Written atomically by the replicator, read by any process (workers, the
 * manager's `gfs-sync` plugin) to answer "is this folder synced?".
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { text } from '../../core/text.js';
import { DroverError } from '../../core/errors.js';
import { stateDir, writeJsonAtomic } from './layout.js';

const placementSchema = z.object({
  /** Path at that site, relative to the site root, `/`-separated. */
  path: text(),
  /** ms epoch of the latest replication to that site; null where the entry originated. */
  sendTime: z.number().nullable(),
  /** Version of the content held there (files), so changes are re-copied. */
  version: z.number().int(),
  /** Last observed stat of a file there: a difference means someone changed it. */
  mtimeMs: z.number().nullable(),
  size: z.number().nullable(),
});

const entrySchema = z.object({
  /** `<origin site>:<origin path>` */
  id: text(),
  kind: z.enum(['dir', 'file']),
  origin: text(),
  originPath: text(),
  /** Id of the containing folder's entry; null at the top of the tree. */
  parent: text().nullable(),
  /** Newest content version and the site holding it (files). */
  version: z.number().int(),
  source: text(),
  /** Replicator-clock ms when the entry was first seen or its content last changed. */
  changedAt: z.number(),
  at: z.record(text(), placementSchema),
});

export const ledgerSchema = z.object({
  format: z.literal(1),
  updatedAt: z.number(),
  entries: z.array(entrySchema),
});

export type Placement = z.infer<typeof placementSchema>;
export type LedgerEntry = z.infer<typeof entrySchema>;
export type Ledger = z.infer<typeof ledgerSchema>;

export function ledgerFile(root: string): string {
  return join(stateDir(root), 'ledger.json');
}

export function entryId(origin: string, originPath: string): string {
  return `${origin}:${originPath}`;
}

/** Reads the ledger; an empty one before the replicator has written anything. */
export async function readLedger(root: string): Promise<Ledger> {
  let text: string;
  try {
    text = await readFile(ledgerFile(root), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return { format: 1, updatedAt: 0, entries: [] };
    }
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new DroverError('unavailable', `${ledgerFile(root)} is not valid JSON`);
  }
  const parsed = ledgerSchema.safeParse(json);
  if (!parsed.success) {
    throw new DroverError(
      'unavailable',
      `${ledgerFile(root)} is not a simulated-GFS ledger: ${parsed.error.message}`,
    );
  }
  return parsed.data;
}

export async function writeLedger(root: string, ledger: Ledger): Promise<void> {
  await writeJsonAtomic(ledgerFile(root), ledger);
}
