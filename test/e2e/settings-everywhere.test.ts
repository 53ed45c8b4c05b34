import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DroverClient } from '../../src/client/index.js';
import type { JobSubmissionInput } from '../../src/core/job-spec.js';
import { DroverError } from '../../src/core/errors.js';
import type { TaskAssignment } from '../../src/core/types.js';
import { SETTINGS_REREAD_MS } from '../../src/events/host.js';
import { TestDatabases, withPostgres } from '../../src/store/conformance/postgres-databases.js';
import { startManager, type RunningManager } from '../../src/manager/server.js';

/**
 * Two managers on one PostgreSQL database, in this process: a setting changed through one is
 * in force on the other within a second (the store's settings notification), or within the
 * re-read period when the notification never comes; and whichever manager receives a
 * submission holds it for the plugins enabled in the store at that moment.
 */

const quiet = pino({ level: 'silent' });
/** "In force everywhere within a second" (DESIGN.md, principle 8). */
const WITHIN_MS = 1_000;

/** Polls `check` until it returns true; the time it took, or an error after `deadlineMs`. */
async function within(
  what: string,
  deadlineMs: number,
  check: () => Promise<boolean>,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > deadlineMs) {
      throw new Error(`${what}: not in force after ${deadlineMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

const render = (name: string, extra: Partial<JobSubmissionInput> = {}): JobSubmissionInput => ({
  name,
  plugin: 'CommandLine',
  pluginInfo: { executable: '/bin/true' },
  frames: '1-200',
  chunkSize: 1,
  ...extra,
});

await withPostgres('settings in force on every manager', () => {
  const dbs = new TestDatabases();
  beforeAll(() => dbs.prepareTemplate(), 60_000);
  afterAll(() => dbs.dropAll(), 60_000);

  let managers: RunningManager[] = [];
  /** The managers' data folders (they hold the admin token). */
  let folders: string[] = [];
  const folder = (name: string) => {
    const dir = mkdtempSync(join(tmpdir(), `drover-settings-${name}-`));
    folders.push(dir);
    return dir;
  };
  let dbUrl = '';
  /** Clients of manager A and manager B, as admin. */
  let a: DroverClient;
  let b: DroverClient;
  let token = '';

  async function startTwo(): Promise<void> {
    dbUrl = await dbs.clone();
    // A starts first, so it leads every plugin's consumer: B runs none of them.
    const first = await startManager({
      dataDir: folder('a'),
      db: dbUrl,
      port: 0,
      logger: quiet,
    });
    managers.push(first);
    const second = await startManager({
      dataDir: folder('b'),
      db: dbUrl,
      port: 0,
      logger: quiet,
    });
    managers.push(second);
    token = first.adminToken!;
    a = new DroverClient({ url: first.url, token });
    b = new DroverClient({ url: second.url, token });
  }

  /**
   * A one-slot worker in `region` that talks to manager B; each call completes the task it
   * holds and claims the next, as a worker does (the task as B hands it out, or null).
   */
  async function workerOnB(
    name: string,
    region: string,
  ): Promise<() => Promise<TaskAssignment | null>> {
    const { token: secret } = await a.createToken(`node-${name}`, 'worker', name);
    const w = new DroverClient({ url: managers[1]!.url, token: secret });
    await w.registerWorker({
      name,
      region,
      capabilities: { cpus: 1, memoryMb: 1024, os: 'linux' },
    });
    let held: string | undefined;
    return async () => {
      const reply = await w.work(name, {
        claim: true,
        waitMs: 0,
        ...(held ? { report: { lease: held, outcome: 'completed' } } : {}),
      });
      held = reply.task?.lease;
      return reply.task;
    };
  }

  afterEach(async () => {
    await Promise.all(managers.map((m) => m.close()));
    managers = [];
    for (const dir of folders) rmSync(dir, { recursive: true, force: true });
    folders = [];
  });

  describe('two managers on one database', () => {
    it('holds a job submitted through B right after gfs-sync was enabled through A, and B shows the new state within a second', async () => {
      await startTwo();
      expect((await b.getPlugin('gfs-sync')).state).toBe('disabled');

      await a.configurePlugin('gfs-sync', { state: 'global' });
      // At once, through the other manager: no wait for any notification.
      const job = await b.submitJob(
        render('shot010 lighting', { outputDirectories: ['/gfs/show/seq010/shot010/v001'] }),
      );
      expect(job.state).toBe('pending');
      expect(job.heldFor).toEqual(['gfs-sync']);

      const took = await within('gfs-sync global on B', WITHIN_MS, async () => {
        return (await b.getPlugin('gfs-sync')).state === 'global';
      });
      expect(took).toBeLessThanOrEqual(WITHIN_MS);
      expect((await b.listPlugins()).find((p) => p.name === 'gfs-sync')?.state).toBe('global');

      // The plugin ran for it: its folder job exists and the render waits for it.
      await within('the [Make Directories] job', 15_000, async () =>
        (await b.listJobs()).some((j) => j.name === 'shot010 lighting [Make Directories]'),
      );
      const folders = (await b.listJobs()).find(
        (j) => j.name === 'shot010 lighting [Make Directories]',
      )!;
      const held = await b.getJob(job.id);
      expect(held.state).toBe('pending');
      expect(held.dependencies).toContain(folders.id);

      // And back: disabled through A, a job submitted through B is queued at once.
      await a.configurePlugin('gfs-sync', { state: 'disabled' });
      const free = await b.submitJob(
        render('shot020 lighting', { outputDirectories: ['/gfs/show/seq010/shot020/v001'] }),
      );
      expect(free.state).toBe('queued');
      expect(free.heldFor).toEqual([]);
    });

    it('maps paths with a rule added through A on tasks handed out by B within a second; limits alike', async () => {
      await startTwo();
      const next = await workerOnB('eu-1', 'eu-west-2');
      await b.submitJob(render('plates', { outputDirectories: ['/gfs/show/plates'] }));
      // B has read the rules (none) for this claim and keeps them.
      expect((await next())?.outputDirectories).toEqual(['/gfs/show/plates']);

      await a.addPathMapping({ prefix: '/gfs/', replacement: '/mnt/london/', region: 'eu-west-2' });
      const took = await within('the new path mapping on B', WITHIN_MS, async () => {
        return (await next())?.outputDirectories[0] === '/mnt/london/show/plates';
      });
      expect(took).toBeLessThanOrEqual(WITHIN_MS);

      // A limit set through A governs B's claims at once (claims read limits in their SQL).
      await a.setLimit('nuke', 0);
      const licensed = await b.submitJob(render('comp', { limits: ['nuke'], priority: 100 }));
      const next2 = await workerOnB('eu-2', 'eu-west-2');
      expect((await next2())?.jobId).not.toBe(licensed.id);
      await a.setLimit('nuke', 5);
      await within('the raised limit on B', WITHIN_MS, async () => {
        return (await next2())?.jobId === licensed.id;
      });
    });

    it('refuses a token revoked through A on B within a second', async () => {
      await startTwo();
      const { token: secret, info } = await a.createToken('alice', 'user');
      const alice = new DroverClient({ url: managers[1]!.url, token: secret });
      // B has looked the token up and keeps the answer.
      expect(await alice.listJobs()).toEqual([]);

      await a.revokeToken(info.id);
      const took = await within('the revocation on B', WITHIN_MS, async () => {
        try {
          await alice.listJobs();
          return false;
        } catch (err) {
          return err instanceof DroverError && err.code === 'unauthorized';
        }
      });
      expect(took).toBeLessThanOrEqual(WITHIN_MS);
    });

    it('re-reads settings changed without a notification within the re-read period', async () => {
      await startTwo();
      // Saved once, so there is a row to change behind the managers' backs.
      await a.configurePlugin('gfs-sync', { state: 'disabled' });
      await within('the saved state on B', WITHIN_MS, async () => {
        return (await b.getPlugin('gfs-sync')).state === 'disabled';
      });
      const next = await workerOnB('us-1', 'us-west-2');
      // Each look below claims a task: enough of them that the job cannot run out in the
      // re-read period (200 ran out on a fast machine before the rules were re-read).
      await b.submitJob(render('bg', { outputDirectories: ['/gfs/show/bg'], frames: '1-4000' }));
      expect((await next())?.outputDirectories).toEqual(['/gfs/show/bg']);

      // As if every NOTIFY were lost: plain SQL, which sends none.
      const client = new pg.Client({ connectionString: dbUrl });
      await client.connect();
      try {
        await client.query(
          `update plugin_settings set state = 'global', config = $1 where name = 'gfs-sync'`,
          [JSON.stringify({ iterationCount: 7 })],
        );
        await client.query(
          `insert into path_mappings (prefix, replacement, region, os, case_sensitive)
           values ('/gfs/', '/mnt/oregon/', 'us-west-2', '', 1)`,
        );
      } finally {
        await client.end();
      }

      const period = SETTINGS_REREAD_MS + WITHIN_MS;
      await Promise.all([
        within('gfs-sync global on B', period, async () => {
          const plugin = await b.getPlugin('gfs-sync');
          return plugin.state === 'global' && plugin.config.iterationCount === 7;
        }),
        within('gfs-sync global on A', period, async () => {
          return (await a.getPlugin('gfs-sync')).state === 'global';
        }),
        within('the new path mapping on B', period, async () => {
          return (await next())?.outputDirectories[0] === '/mnt/oregon/show/bg';
        }),
      ]);
    }, 30_000);
  });
});
