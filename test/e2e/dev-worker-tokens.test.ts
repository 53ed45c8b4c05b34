import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DroverClient } from '../../src/client/index.js';
import { DroverError } from '../../src/core/errors.js';
import { startDev, stopProcess, until } from '../farm.js';

/**
 * `drover dev` gives each local worker its own token, acting only as that worker, in a 0600
 * file the worker reads with --token-file — never in the environment (which every task
 * inherits). The real `drover dev` process, its real worker processes.
 */

const running: ChildProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map(stopProcess));
}, 60_000);

/** Starts `drover dev` on `data` (one region, two workers) with a token of the user's own. */
async function dev(data: string): ReturnType<typeof startDev> {
  // The user's own token for the CLI (often an admin one) must not reach the workers.
  const farm = await startDev(data, ['--regions', 'r1', '--workers-per-region', '2'], {
    ...process.env,
    DROVER_TOKEN: 'drv_the_users_own_token',
  });
  running.push(farm.child);
  return farm;
}

/** The pids of `drover worker` processes started for `data`. */
function workerPids(data: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return (
          argv.includes('worker') && argv.some((a) => a.startsWith(join(data, 'worker-tokens')))
        );
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function registered(client: DroverClient, names: string[]): Promise<void> {
  await until(
    `workers ${names.join(', ')} to register`,
    async () => {
      const workers = await client.listWorkers();
      return names.every((n) => workers.some((w) => w.name === n && w.state !== 'offline'));
    },
    60_000,
  );
}

describe.runIf(process.platform === 'linux')('drover dev: a token per worker', () => {
  it('gives each worker its own scoped token in a private file, and reuses or replaces it on restart', async () => {
    const data = mkdtempSync(join(tmpdir(), 'drover-dev-'));
    const first = await dev(data);
    const admin = new DroverClient({
      url: first.url,
      token: readFileSync(join(data, 'admin-token'), 'utf8').trim(),
    });
    await registered(admin, ['r1-1', 'r1-2']);

    // Private files, one per worker.
    const folder = join(data, 'worker-tokens');
    expect(statSync(folder).mode & 0o777).toBe(0o700);
    const secret = (name: string) => readFileSync(join(folder, name), 'utf8').trim();
    for (const name of ['r1-1', 'r1-2']) {
      expect(statSync(join(folder, name)).mode & 0o777).toBe(0o600);
    }
    // Each scoped to its own name; no farm-wide worker token.
    const live = async () =>
      (await admin.listTokens()).filter((t) => t.role === 'worker' && t.revokedAt === null);
    const tokens = await live();
    expect(tokens.map((t) => [t.name, t.workers]).sort()).toEqual([
      ['worker-r1-1', 'r1-1'],
      ['worker-r1-2', 'r1-2'],
    ]);
    // The worker processes carry no token in their environment.
    const pids = workerPids(data);
    expect(pids).toHaveLength(2);
    for (const pid of pids) {
      expect(readFileSync(`/proc/${pid}/environ`, 'utf8')).not.toMatch(/(^|\0)DROVER_TOKEN/);
    }
    // A token that leaked from r1-1 cannot act as r1-2.
    const asR1 = new DroverClient({ url: first.url, token: secret('r1-1') });
    const registration = { cpus: 1, memoryMb: 1024, os: 'linux' };
    const refused = await asR1.registerWorker({ name: 'r1-2', capabilities: registration }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(DroverError);
    expect((refused as DroverError).message).toMatch(/acts only as workers matching "r1-1"/);
    expect((refused as DroverError).code).toBe('forbidden');

    // Restart: a valid token is reused; a revoked one is replaced (the old one stays revoked).
    const keep = secret('r1-1');
    const old = tokens.find((t) => t.workers === 'r1-2')!;
    await admin.revokeToken(old.id);
    await stopProcess(first.child);
    const second = await dev(data);
    const admin2 = new DroverClient({
      url: second.url,
      token: readFileSync(join(data, 'admin-token'), 'utf8').trim(),
    });
    await registered(admin2, ['r1-1', 'r1-2']);
    expect(secret('r1-1')).toBe(keep);
    const after = (await admin2.listTokens()).filter((t) => t.role === 'worker');
    const r2 = after.filter((t) => t.workers === 'r1-2');
    expect(r2.find((t) => t.id === old.id)?.revokedAt).not.toBeNull();
    const fresh = r2.filter((t) => t.revokedAt === null);
    expect(fresh).toHaveLength(1);
    expect(fresh[0]!.name).toMatch(/^worker-r1-2/);
    expect(after.filter((t) => t.workers === 'r1-1' && t.revokedAt === null)).toHaveLength(1);
  }, 120_000);
});
