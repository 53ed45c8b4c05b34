import { randomBytes } from 'node:crypto';

/**
 * Job ids are 24 hex digits like Deadline's: 12 of milliseconds then 12 random, so they
 * sort by submission time and a pipeline that stores Deadline ids stores ours unchanged.
 */
export function newJobId(now: number): string {
  return now.toString(16).padStart(12, '0').slice(-12) + randomBytes(6).toString('hex');
}

/** A lease token: unguessable, so only the worker that claimed a task can report on it. */
export function newLease(): string {
  return randomBytes(16).toString('base64url');
}
