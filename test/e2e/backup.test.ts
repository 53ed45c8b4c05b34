import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DroverClient } from '../../src/client/index.js';
import { startManager, type RunningManager } from '../../src/manager/server.js';
import { openStore } from '../../src/store/open.js';
import { startWorker } from '../../src/worker/agent.js';
import { CLI, FAST } from '../farm.js';

/**
 * `drover db backup FILE` on a live farm: jobs are being submitted and rendered while the
 * backup runs; the copy is one consistent state (every job's task rows match its counts),
 * and a manager started on the restored file serves the jobs.
 */

const run = promisify(execFile);
const quiet = pino({ level: 'silent' });
const managers: RunningManager[] = [];
afterEach(async () => {
  for (const m of managers.splice(0)) {
    await Promise.race([m.close(), new Promise((r) => setTimeout(r, 5_000))]);
  }
});

describe('drover db backup', () => {
  it('copies a live SQLite store consistently, and a manager serves the restored copy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-backup-'));
    const m = await startManager({ dataDir: dir, port: 0, settings: FAST, logger: quiet });
    managers.push(m);
    const client = new DroverClient({ url: m.url, token: m.adminToken! });
    const { secret: workerToken } = await m.auth!.createToken('workers', 'worker');
    const worker = startWorker({
      manager: m.url,
      token: workerToken,
      name: 'b1',
      spoolDir: join(dir, 'spool'),
      claimWaitMs: 200,
      logger: quiet,
    });

    // Writers: submissions (each one transaction of a job and its tasks) and a worker
    // completing tasks, until the backup is done.
    let writing = true;
    const submitted: string[] = [];
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const job = await client.submitJob({
          name: `backup ${i}`,
          plugin: 'CommandLine',
          pluginInfo: { executable: '/bin/true' },
          frames: '1-40',
        });
        submitted.push(job.id);
      }
    })();
    while (submitted.length < 5) await new Promise((r) => setTimeout(r, 20));

    const backup = join(dir, 'backup.db');
    const { stdout } = await run(process.execPath, [
      CLI,
      'db',
      'backup',
      backup,
      '--data',
      dir,
      '--json',
    ]);
    writing = false;
    await writer;
    worker.stopNow();
    await worker.done;
    const report = JSON.parse(stdout) as { destination: string; bytes: number };
    expect(report).toMatchObject({ destination: backup });
    expect(report.bytes).toBeGreaterThan(0);

    // The copy: every job it holds is whole, and its counts agree with its task rows.
    const copy = await openStore(backup, {});
    let jobsInCopy: string[];
    try {
      const jobs = await copy.listJobs({ all: true, limit: 10_000, offset: 0 });
      jobsInCopy = jobs.map((j) => j.id);
      expect(jobs.length).toBeGreaterThanOrEqual(5);
      for (const job of jobs) {
        const tasks = await copy.listTasks(job.id, { limit: 10_000, offset: 0 });
        expect(tasks.length).toBe(job.taskCount);
        const byState = new Map<string, number>();
        for (const t of tasks) byState.set(t.state, (byState.get(t.state) ?? 0) + 1);
        for (const [state, n] of Object.entries(job.counts)) {
          expect(byState.get(state) ?? 0, `${job.id} ${state}`).toBe(n);
        }
      }
      // Only jobs that were submitted: nothing half-written.
      expect(submitted).toEqual(expect.arrayContaining(jobsInCopy));
    } finally {
      await copy.close();
    }

    // Restore: the copy becomes a data folder's drover.db; a manager serves its jobs.
    const restored = join(dir, 'restored');
    mkdirSync(restored);
    copyFileSync(backup, join(restored, 'drover.db'));
    copyFileSync(join(dir, 'admin-token'), join(restored, 'admin-token'));
    const again = await startManager({ dataDir: restored, port: 0, settings: FAST, logger: quiet });
    managers.push(again);
    const restoredClient = new DroverClient({ url: again.url, token: again.adminToken! });
    const served = await restoredClient.listJobs({ all: true, limit: 1000 });
    expect(new Set(served.map((j) => j.id))).toEqual(new Set(jobsInCopy));
    const one = served[0]!;
    expect((await restoredClient.listTasks(one.id, { limit: 100 })).length).toBe(one.taskCount);
  }, 120_000);
});
