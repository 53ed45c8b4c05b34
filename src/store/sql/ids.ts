import { randomBytes } from 'node:crypto';

/**
 * Job ids are 24 hex digits like Deadline's: 12 of milliseconds then 12 random, so they
 * sort by submission time and a pipeline that stores Deadline ids stores ours unchanged.
 */
export function newJobId(now: number): string {
  return now.toString(16).padStart(12, '0').slice(-12) + randomBytes(6).toString('hex');
}

/**
 * The start of a lease token: unguessable, so only the worker that claimed a task can
 * report on it. The claim's UPDATE appends `.<task index>.<attempt>` (`leaseSuffixSql`), so a
 * full lease reads `<random>.<job id>.<index>.<attempt>`: a late report on a lease that is no
 * longer current still names the attempt it was for, and the refusal is written to that
 * attempt's log and the event log (a task's `lease` column is cleared when it is requeued).
 */
export function newLeasePrefix(jobId: string): string {
  // Job ids are 24 hex digits (`newJobId`); anything else is left out rather than let a
  // lease outgrow the protocol's 128 characters.
  return `${randomBytes(16).toString('base64url')}.${/^[0-9a-f]{24}$/.test(jobId) ? jobId : 'x'}`;
}

/** SQL (both dialects) for the lease a claim's UPDATE sets: prefix, task index, new attempt. */
export const LEASE_SQL = `cast(? as text) || '.' || idx || '.' || (attempt + 1)`;

export interface LeaseParts {
  jobId: string;
  index: number;
  attempt: number;
}

/** The task attempt a lease was handed out for, or undefined for a lease of another shape. */
export function parseLease(lease: string): LeaseParts | undefined {
  const m = /^[A-Za-z0-9_-]{22}\.([0-9a-f]{24})\.(\d{1,9})\.(\d{1,9})$/.exec(lease);
  if (!m) return undefined;
  return { jobId: m[1]!, index: Number(m[2]), attempt: Number(m[3]) };
}
