import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DroverClient } from '../../client/index.js';
import { startManager, type RunningManager } from '../../manager/server.js';
import { submitOnce } from './submit.js';

const quiet = pino({ level: 'silent' });

/** A real manager (SQLite, HTTP on a free port, tokens on) and the CLI's submission. */
describe('drover submit against a real manager', () => {
  let manager: RunningManager | undefined;
  afterEach(async () => {
    await manager?.close();
    manager = undefined;
  });

  const start = async (settings = {}) => {
    manager = await startManager({
      dataDir: mkdtempSync(join(tmpdir(), 'drover-submit-')),
      port: 0,
      logger: quiet,
      settings,
    });
    return manager;
  };
  const spec = (frames: string) => ({
    name: 'huge',
    plugin: 'CommandLine',
    pluginInfo: { executable: '/bin/echo', arguments: ['{start}'] },
    frames,
    chunkSize: 1,
  });

  it('makes one job when its first attempt times out while a large job is still being created', async () => {
    const m = await start();
    // A client that gives up long before the job is in: every attempt but the last times out.
    const impatient = new DroverClient({ url: m.url, token: m.adminToken, timeoutMs: 300 });
    const failures: string[] = [];
    const job = await submitOnce(impatient, spec('1-300000'), {
      attempts: 60,
      retryDelayMs: 100,
      onRetry: (err) => failures.push(err.code),
    });
    expect(failures.length).toBeGreaterThan(0);
    expect(new Set(failures)).toEqual(new Set(['unavailable']));
    expect(job.taskCount).toBe(300_000);
    const patient = new DroverClient({ url: m.url, token: m.adminToken });
    const jobs = await patient.listJobs({ all: true });
    expect(jobs.map((j) => j.id)).toEqual([job.id]);
    expect(jobs[0]!.counts.queued).toBe(300_000);
  }, 90_000);

  it('is refused over HTTP with 400 naming frames when a user token passes the frame budget', async () => {
    const m = await start({ maxFramesPerJob: { user: 10 } });
    const { secret } = await m.auth!.createToken('artist', 'user');
    const user = new DroverClient({ url: m.url, token: secret });
    await expect(submitOnce(user, spec('1-11'))).rejects.toMatchObject({
      code: 'invalid_input',
      message: expect.stringMatching(/^frames: .*at most 10 frames/) as unknown,
    });
    expect((await submitOnce(user, spec('1-10'))).frameCount).toBe(10);
  });
});
