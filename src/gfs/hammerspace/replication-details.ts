/**
 * Parsing Hammerspace's answer to `./?.eval_json replication_details`: a JSON object whose
 * `REPLICATION_DETAILS_TABLE` lists one row per replication of the object, each with a
 * `SEND_TIME` like `{ "date": "2026-11-22 10:00:05Z" }` (UTC). Pure functions, no I/O.
 */
import { z } from 'zod';
import { text } from '../../core/text.js';
import { DroverError } from '../../core/errors.js';
import type { SiteSync } from '../types.js';

/** One row of the table: which site, and when the object was last sent there (ms, UTC). */
export interface ReplicationRow {
  site: string;
  sendTime: number | null;
}

const replySchema = z.object({
  REPLICATION_DETAILS_TABLE: z.array(z.record(text(), z.unknown())),
});

/**
 * Fields that might name the site a row replicates to. Hammerspace's field names are not
 * documented publicly [?], so plausible ones are tried in order; a reply with none of them
 * still works, one site per row (`row0`, `row1`, …).
 */
export const SITE_FIELDS = [
  'SITE_NAME',
  'SITE',
  'REMOTE_SITE',
  'REMOTE_SITE_NAME',
  'DESTINATION_SITE',
  'DESTINATION',
  'TARGET_SITE',
  'TARGET',
  'PEER_SITE',
  'PEER',
  'SITE_ID',
] as const;

/** Keys that hold the value inside Hammerspace's typed wrappers (`{ "date": … }` and kin). */
const VALUE_KEYS = ['name', 'string', 'value', 'text', 'site', 'id', 'uoid'] as const;

/** Parses a reply into rows; throws `unavailable` with what was wrong on a bad reply. */
export function parseReplicationDetails(text: string): ReplicationRow[] {
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/[\0\s]+$/, ''));
  } catch (error) {
    throw badReply(`not JSON (${(error as Error).message}): ${preview(text)}`);
  }
  const parsed = replySchema.safeParse(json);
  if (!parsed.success) {
    throw badReply(`no REPLICATION_DETAILS_TABLE array of rows: ${preview(text)}`);
  }
  return parsed.data.REPLICATION_DETAILS_TABLE.map((row, index) => ({
    site: siteOf(row) ?? `row${index}`,
    sendTime: sendTimeOf(row, index),
  }));
}

/**
 * Parses `YYYY-MM-DD HH:MM:SS` (optionally `T` for the space, fractional seconds and a `Z`)
 * as UTC and returns ms since the epoch.
 */
export function parseSendTime(date: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?Z?$/.exec(date.trim());
  if (!m) throw badReply(`SEND_TIME "${date}" is not "YYYY-MM-DD HH:MM:SS[Z]"`);
  const [, y, mo, d, h, mi, s, frac] = m.map((part) => part ?? '');
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const check = new Date(ms);
  if (
    check.getUTCMonth() !== Number(mo) - 1 ||
    check.getUTCDate() !== Number(d) ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(s) > 59
  ) {
    throw badReply(`SEND_TIME "${date}" is not a real date and time`);
  }
  return frac ? ms + Math.floor(Number(frac) * 1000) : ms;
}

/**
 * Per-site sync state of an object whose modification time is `mtimeMs`: a site is synced
 * when the mtime in whole seconds is strictly before the newest send time to that site.
 *
 * Deadline's plugin compares the mtime with the newest send time over ALL rows, which says
 * "reached some site", not "reached every site": with three sites, one fast link is enough
 * for it to release the render job while the third region can still create a colliding
 * folder. Here each site must have been sent the folder after its last change.
 */
export function siteSyncFromRows(rows: ReplicationRow[], mtimeMs: number): SiteSync[] {
  const newest = new Map<string, number | null>();
  for (const row of rows) {
    const seen = newest.get(row.site);
    if (seen === undefined || (row.sendTime !== null && (seen === null || row.sendTime > seen))) {
      newest.set(row.site, row.sendTime);
    }
  }
  const mtimeWholeSeconds = Math.floor(mtimeMs / 1000) * 1000;
  return [...newest].map(([site, sendTime]) => ({
    site,
    sendTime,
    synced: sendTime !== null && mtimeWholeSeconds < sendTime,
  }));
}

function siteOf(row: Record<string, unknown>): string | undefined {
  for (const field of SITE_FIELDS) {
    const value = scalarOf(row[field]);
    if (value !== undefined) return value;
  }
  return undefined;
}

function scalarOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value.trim();
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  for (const key of VALUE_KEYS) {
    const inner = scalarOf(record[key]);
    if (inner !== undefined) return inner;
  }
  const values = Object.values(record);
  return values.length === 1 ? scalarOf(values[0]) : undefined;
}

function sendTimeOf(row: Record<string, unknown>, index: number): number | null {
  const raw = row['SEND_TIME'];
  if (raw === undefined || raw === null) return null; // not sent there yet
  const date =
    typeof raw === 'string'
      ? raw
      : typeof raw === 'object' && !Array.isArray(raw)
        ? (raw as Record<string, unknown>)['date']
        : undefined;
  if (date === null || date === undefined || date === '') return null;
  if (typeof date !== 'string') {
    throw badReply(`row ${index}: SEND_TIME is not { "date": "YYYY-MM-DD HH:MM:SSZ" }`);
  }
  return parseSendTime(date);
}

function badReply(message: string): DroverError {
  return new DroverError(
    'unavailable',
    `unexpected Hammerspace replication_details reply: ${message}`,
  );
}

function preview(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}
