import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rolesFor } from '../../src/api/contract.js';
import { deadlineRoutes, type DeadlineRoutes } from '../../src/compat/deadline/routes.js';
import { buildDeadlineApp } from '../../src/compat/deadline/server.js';
import { Authenticator } from '../../src/manager/auth.js';
import { defaultManagerSettings } from '../../src/manager/config.js';
import { Farm } from '../../src/manager/farm.js';
import type { Store } from '../../src/store/contract.js';
import { openStore } from '../../src/store/open.js';
import { TestDatabases, withPostgres } from '../../src/store/conformance/postgres-databases.js';
import { basic } from './deadline-http.js';

/**
 * Deadline's Web Service in process (real SQLite store, real tokens): every route of its
 * table × no credentials / read-only / user / other user / admin, and the replies clients
 * parse.
 */

const quiet = pino({ level: 'silent' });
const CMD = { Executable: '/bin/echo', Arguments: 'frame <STARTFRAME>' };

function webServiceSuite(kind: string, open: () => Promise<Store>): void {
  let store: Store;
  let app: FastifyInstance;
  let anonymousApp: FastifyInstance;
  const secrets: Record<string, string> = {};

  type Who = 'none' | 'read-only' | 'user' | 'other user' | 'admin';
  const tokens: [Who, string, 'read-only' | 'user' | 'admin'][] = [
    ['read-only', 'viewer', 'read-only'],
    ['user', 'alice', 'user'],
    ['other user', 'bob', 'user'],
    ['admin', 'admin', 'admin'],
  ];

  function as(who: Who): Record<string, string> {
    if (who === 'none') return {};
    const [, name] = tokens.find((t) => t[0] === who)!;
    return { authorization: basic(name, secrets[who]!) };
  }

  async function submitAs(who: Who, jobInfo: Record<string, unknown> = {}) {
    const r = await app.inject({
      method: 'POST',
      url: '/api/jobs',
      headers: as(who),
      payload: { JobInfo: { Plugin: 'CommandLine', Frames: '1-3', ...jobInfo }, PluginInfo: CMD },
    });
    expect(r.statusCode, r.body).toBe(200);
    return r.json<{ _id: string; Stat: number; Props: Record<string, unknown> }>();
  }

  beforeAll(async () => {
    store = await open();
    const farm = new Farm(store, defaultManagerSettings, quiet);
    const auth = new Authenticator(store);
    for (const [who, name, role] of tokens)
      secrets[who] = (await auth.createToken(name, role)).secret;
    app = buildDeadlineApp(farm, quiet, { access: auth, allowedHosts: [] });
    anonymousApp = buildDeadlineApp(farm, quiet, {
      access: auth,
      allowedHosts: [],
      anonymousUser: 'legacy',
    });
    await app.ready();
    await anonymousApp.ready();
  });

  afterAll(async () => {
    await app.close();
    await anonymousApp.close();
    await store.close();
  });

  describe(`${kind}: access, every route × principal`, () => {
    /** A request per route; job routes name alice's job. */
    function sample(name: string, jobId: string): Partial<InjectOptions> {
      const byName: Partial<Record<keyof DeadlineRoutes, Partial<InjectOptions>>> = {
        getJobs: { query: { JobID: jobId } },
        submitJobs: {
          payload: { JobInfo: { Plugin: 'CommandLine', Frames: '1' }, PluginInfo: CMD },
        },
        jobCommand: { payload: { Command: 'releasepending', JobID: jobId } },
        deleteJobs: { query: { JobID: jobId } },
        getTasks: { query: { JobID: jobId } },
        taskCommand: { payload: { Command: 'requeue', JobID: jobId, TaskList: 0 } },
        getJobReports: { query: { JobID: jobId } },
        getTaskReports: { query: { JobID: jobId, TaskID: '0' } },
        limitGroupCommand: { payload: { Command: 'set', Name: 'lic', Limit: 2 } },
        mapPaths: { payload: { OS: 'Linux', Paths: ['/a'] } },
        repository: { query: { Version: 'true' } },
      };
      return (Object.hasOwn(byName, name) ? byName[name as keyof DeadlineRoutes] : undefined) ?? {};
    }
    /** Routes that act on the job they name (a user acts only on its own). */
    const owned = new Set(['jobCommand', 'deleteJobs', 'taskCommand']);

    for (const def of Object.values(deadlineRoutes)) {
      for (const who of ['none', 'read-only', 'user', 'other user', 'admin'] as Who[]) {
        it(`${def.method} ${def.path} (${def.name}) as ${who}`, async () => {
          // A fresh job of alice's for each case (deleting one must not affect another case).
          const jobId = (await submitAs('user'))._id;
          const s = sample(def.name, jobId);
          const r = await app.inject({
            method: def.method,
            url: def.path,
            headers: as(who),
            ...s,
          } as InjectOptions);
          const role = tokens.find((t) => t[0] === who)?.[2];
          let expected: 'ok' | 401 | 403 = 'ok';
          if (def.access !== 'public') {
            if (!role) expected = 401;
            else if (!(rolesFor[def.access] as readonly string[]).includes(role)) expected = 403;
            else if (owned.has(def.name) && who === 'other user') expected = 403;
          }
          if (expected === 'ok') {
            expect([401, 403], `${r.statusCode} ${r.body}`).not.toContain(r.statusCode);
            expect(r.statusCode, r.body).toBeLessThan(500 + (def.status === 501 ? 2 : 0));
            if (def.status === 501) expect(r.statusCode).toBe(501);
          } else {
            expect(r.statusCode, r.body).toBe(expected);
            // Deadline's error style: text, not JSON.
            expect(r.headers['content-type']).toMatch(/^text\/plain/);
            if (expected === 401) expect(r.headers['www-authenticate']).toMatch(/^Basic/);
          }
        });
      }
    }

    it('a Bearer token works too; a wrong Basic password is 401', async () => {
      const ok = await app.inject({
        url: '/api/pools',
        headers: { authorization: `Bearer ${secrets.admin}` },
      });
      expect(ok.statusCode).toBe(200);
      const bad = await app.inject({
        url: '/api/pools',
        headers: { authorization: basic('admin', 'nope') },
      });
      expect(bad.statusCode).toBe(401);
    });

    it('--deadline-anonymous-user: requests without credentials act as that user', async () => {
      const r = await anonymousApp.inject({
        method: 'POST',
        url: '/api/jobs',
        payload: {
          JobInfo: { Plugin: 'CommandLine', UserName: 'someone-else' },
          PluginInfo: CMD,
        },
      });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json<{ Props: { User: string } }>().Props.User).toBe('legacy');
      // Still a user: admin routes are refused.
      const admin = await anonymousApp.inject({
        method: 'PUT',
        url: '/api/limitgroups',
        payload: { Command: 'set', Name: 'x', Limit: 1 },
      });
      expect(admin.statusCode).toBe(403);
    });
  });

  describe(`${kind}: replies clients parse`, () => {
    it('GET / is the banner Ayon checks', async () => {
      const r = await app.inject({ url: '/' });
      expect(r.statusCode).toBe(200);
      expect(r.body).toMatch(/^Deadline Web Service \d+\.\d+.* \(Drover .+\)$/);
    });

    it('a submission answers the whole job; GET JobID= is always an array; IdOnly has no true/false/null', async () => {
      const job = await submitAs('user', {
        Name: 'render',
        BatchName: 'sh010',
        Frames: '1-10x3,20',
        ChunkSize: 2147483647,
        EnvironmentKeyValue0: 'AYON_PROJECT_NAME=demo',
        ExtraInfoKeyValue0: 'k=v',
        Whitelist: '',
        StrayFlag: true,
      });
      expect(job._id).toMatch(/^[0-9a-f]{24}$/);
      expect(job.Stat).toBe(1);
      expect(job.Props).toMatchObject({
        Name: 'render',
        Batch: 'sh010',
        User: 'alice',
        Frames: '1-10x3,20',
        Chunk: 2147483647,
        Tasks: 1,
        Env: { AYON_PROJECT_NAME: 'demo' },
        ExDic: { k: 'v' },
        PlugInfo: CMD,
      });
      const one = await app.inject({ url: `/api/jobs?JobID=${job._id}`, headers: as('read-only') });
      expect(one.json()).toHaveLength(1);
      expect(one.json<{ _id: string }[]>()[0]!._id).toBe(job._id);
      const details = await app.inject({
        url: `/api/jobs?JobID=${job._id}&Details=true`,
        headers: as('read-only'),
      });
      const detail = details.json<Record<string, { Job: { _id: string }; Tasks: unknown[] }>>();
      expect(detail[job._id]!.Job._id).toBe(job._id);
      expect(detail[job._id]!.Tasks).toHaveLength(1);
      // The unknown key is in the job's history.
      const history = await store.listEvents({ jobId: job._id });
      expect(JSON.stringify(history)).toContain('JobInfo.StrayFlag');

      const idOnly = await app.inject({
        method: 'POST',
        url: '/api/jobs',
        headers: as('user'),
        payload: { JobInfo: { Plugin: 'CommandLine' }, PluginInfo: CMD, IdOnly: true },
      });
      expect(idOnly.body).toMatch(/^\{"_id":"[0-9a-f]{24}"\}$/);
    });

    it('a body without Content-Type is JSON; mutating calls answer Success; Stat follows', async () => {
      const job = await submitAs('user');
      const r = await app.inject({
        method: 'PUT',
        url: '/api/jobs',
        headers: { ...as('user'), accept: 'application/json' },
        payload: JSON.stringify({ Command: 'suspend', JobID: job._id }),
      });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.body).toBe('Success');
      const after = await app.inject({ url: `/api/jobs?JobID=${job._id}`, headers: as('user') });
      expect(after.json<{ Stat: number }[]>()[0]!.Stat).toBe(2);
      const suspended = await app.inject({
        url: '/api/jobs?States=Suspended&IdOnly=true',
        headers: as('user'),
      });
      expect(suspended.json()).toContain(job._id);
    });

    it('client mistakes are 400 texts naming the key, never 5xx', async () => {
      const cases: [InjectOptions, RegExp][] = [
        [{ method: 'PUT', url: '/api/jobs' }, /missing body/],
        [{ method: 'PUT', url: '/api/jobs', payload: { JobID: 'x' } }, /Command/],
        [{ method: 'PUT', url: '/api/jobs', payload: { Command: 'suspend' } }, /JobID/],
        [
          {
            method: 'PUT',
            url: '/api/jobs',
            payload: '{nope',
            headers: { 'content-type': 'application/json' },
          },
          /JSON/,
        ],
        [
          {
            method: 'POST',
            url: '/api/jobs',
            payload: { JobInfo: { Plugin: 'CommandLine', Priority: 'high' }, PluginInfo: CMD },
          },
          /JobInfo\.Priority/,
        ],
        [
          {
            method: 'POST',
            url: '/api/jobs',
            payload: { JobInfo: { Plugin: 'CommandLine', Priority: 300 }, PluginInfo: CMD },
          },
          /JobInfo\.Priority/,
        ],
        [
          {
            method: 'POST',
            url: '/api/jobs',
            payload: { JobInfo: { Plugin: 'CommandLine' }, PluginInfo: { Executable: 'bin/x' } },
          },
          /PluginInfo\.Executable/,
        ],
        [{ method: 'GET', url: '/api/jobs?States=Sleeping' }, /States/],
        [{ method: 'GET', url: '/api/tasks' }, /JobID/],
        [{ method: 'GET', url: '/api/jobs?Details=true' }, /JobID/],
        // Kept verbatim, so refused before the store (PostgreSQL cannot hold NUL).
        [
          {
            method: 'POST',
            url: '/api/jobs',
            payload: { JobInfo: { Plugin: 'CommandLine', 'Stray\u0000': 1 }, PluginInfo: CMD },
          },
          /JobInfo\.Stray/,
        ],
        [
          {
            method: 'POST',
            url: '/api/jobs',
            payload: {
              JobInfo: { Plugin: 'CommandLine' },
              PluginInfo: { ...CMD, Shell: 'a\ud800' },
            },
          },
          /PluginInfo\.Shell/,
        ],
        [{ method: 'GET', url: '/api/slaves?Data=everything' }, /Data/],
      ];
      for (const [req, message] of cases) {
        const r = await app.inject({ ...req, headers: { ...as('admin'), ...(req.headers ?? {}) } });
        expect(r.statusCode, `${String(req.method)} ${JSON.stringify(req.url)}: ${r.body}`).toBe(
          400,
        );
        expect(r.headers['content-type']).toMatch(/^text\/plain/);
        expect(r.body).toMatch(message);
      }
    });

    it('several jobs with Dependent: each waits for the one before', async () => {
      const r = await app.inject({
        method: 'POST',
        url: '/api/jobs',
        headers: as('user'),
        payload: {
          Dependent: 'true',
          Jobs: [
            { JobInfo: { Plugin: 'CommandLine', Name: 'a' }, PluginInfo: CMD },
            { JobInfo: { Plugin: 'CommandLine', Name: 'b' }, PluginInfo: CMD },
          ],
        },
      });
      expect(r.statusCode, r.body).toBe(200);
      const [a, b] = r.json<{ _id: string; Stat: number; Props: { Dep: { JobID: string }[] } }[]>();
      expect(b!.Props.Dep.map((d) => d.JobID)).toEqual([a!._id]);
      expect(b!.Stat).toBe(6);
    });

    it('tasks: by job, by id, ids only; task commands take TaskList as number, list or absent', async () => {
      const job = await submitAs('user', { Frames: '1-3', ChunkSize: 1 });
      const all = await app.inject({ url: `/api/tasks?JobID=${job._id}`, headers: as('user') });
      const body = all.json<{
        ID: string;
        Tasks: { _id: string; Frames: string; Stat: number }[];
      }>();
      expect(body.ID).toBe(job._id);
      expect(body.Tasks.map((t) => t.Frames)).toEqual(['1-1', '2-2', '3-3']);
      expect(body.Tasks[0]!._id).toBe(`${job._id}_0`);
      const ids = await app.inject({
        url: `/api/tasks?JobID=${job._id}&IdOnly=true`,
        headers: as('user'),
      });
      expect(ids.json()).toEqual([0, 1, 2]);
      const one = await app.inject({
        url: `/api/tasks?JobID=${job._id}&TaskID=1`,
        headers: as('user'),
      });
      expect(one.json<{ TaskID: number }>().TaskID).toBe(1);
      const bad = await app.inject({
        method: 'PUT',
        url: '/api/tasks',
        headers: as('user'),
        payload: { Command: 'requeue', JobID: job._id, TaskList: [7] },
      });
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toMatch(/TaskList/);
      const perTask = await app.inject({
        method: 'PUT',
        url: '/api/tasks',
        headers: as('user'),
        payload: { Command: 'releasepending', JobID: job._id },
      });
      expect(perTask.statusCode).toBe(501);
      expect(perTask.body).toMatch(/whole jobs/);
    });

    it('save changes what Drover can change; unsupported commands are 501', async () => {
      const job = await submitAs('user');
      const got = (
        await app.inject({ url: `/api/jobs?JobID=${job._id}`, headers: as('user') })
      ).json<{ Props: Record<string, unknown> }[]>()[0]!;
      got.Props.Pri = 80;
      const saved = await app.inject({
        method: 'PUT',
        url: '/api/jobs',
        headers: as('user'),
        payload: { Command: 'save', Job: got },
      });
      expect(saved.statusCode, saved.body).toBe(400); // JobID is required next to the job
      const ok = await app.inject({
        method: 'PUT',
        url: '/api/jobs',
        headers: as('user'),
        payload: { Command: 'save', JobID: job._id, Job: got },
      });
      expect(ok.body).toBe('Success');
      expect((await store.fetchJob(job._id))!.priority).toBe(80);
      const complete = await app.inject({
        method: 'PUT',
        url: '/api/jobs',
        headers: as('user'),
        payload: { Command: 'setjobframerange', JobID: job._id, FrameList: '1-5' },
      });
      expect(complete.statusCode).toBe(501);
      expect(complete.body).toMatch(/not supported/);
    });

    it('task commands suspend, resume, complete and fail chosen tasks; job complete finishes it', async () => {
      const put = (url: string, payload: unknown, who: Who = 'user') =>
        app.inject({ method: 'PUT', url, headers: as(who), payload: payload as never });
      const stats = async (id: string) =>
        (await app.inject({ url: `/api/tasks?JobID=${id}`, headers: as('user') }))
          .json<{ Tasks: { Stat: number }[] }>()
          .Tasks.map((t) => t.Stat);
      const job = await submitAs('user', { Frames: '1-3', InitialStatus: 'Suspended' });
      let r = await put('/api/tasks', { Command: 'resume', JobID: job._id, TaskList: [0, 2] });
      expect(r.body).toBe('Success');
      expect(await stats(job._id)).toEqual([2, 3, 2]);
      r = await put('/api/tasks', { Command: 'suspend', JobID: job._id, TaskList: 2 });
      expect(r.body).toBe('Success');
      r = await put('/api/tasks', { Command: 'complete', JobID: job._id, TaskList: '0' });
      expect(await stats(job._id)).toEqual([5, 3, 3]);
      // Another user's job: refused, nothing changes.
      r = await put('/api/tasks', { Command: 'fail', JobID: job._id }, 'other user');
      expect(r.statusCode).toBe(403);
      expect(await stats(job._id)).toEqual([5, 3, 3]);
      r = await put('/api/tasks', { Command: 'pend', JobID: job._id });
      expect(r.statusCode).toBe(501);
      r = await put('/api/jobs', { Command: 'complete', JobID: job._id });
      expect(r.body).toBe('Success');
      const [done] = (
        await app.inject({ url: `/api/jobs?JobID=${job._id}`, headers: as('user') })
      ).json<{ Stat: number; CompletedChunks: number }[]>();
      expect([done!.Stat, done!.CompletedChunks]).toEqual([3, 3]);
      // Deleted, then undeleted: back, suspended (another user may not).
      const gone = await submitAs('user', { Frames: '1-2' });
      await app.inject({
        method: 'DELETE',
        url: `/api/jobs?JobID=${gone._id}`,
        headers: as('user'),
      });
      r = await put('/api/jobs', { Command: 'undelete', JobIDs: [gone._id] }, 'other user');
      expect(r.statusCode).toBe(403);
      r = await put('/api/jobs', { Command: 'undelete', JobID: gone._id });
      expect(r.body).toBe('Success');
      expect((await store.fetchJob(gone._id))!.state).toBe('suspended');
      r = await put('/api/jobs', { Command: 'undelete', JobID: gone._id });
      expect(r.statusCode).toBe(409);
      const other = await submitAs('user', { Frames: '1-2' });
      r = await put('/api/tasks', { Command: 'fail', JobID: other._id, TaskList: [1] });
      expect(r.body).toBe('Success');
      expect((await store.fetchJob(other._id))!.state).toBe('failed');
    });

    it('lookups are arrays of names', async () => {
      for (const url of [
        '/api/pools',
        '/api/groups',
        '/api/limitgroups?NamesOnly=true',
        '/api/slaves?NamesOnly=true',
        '/api/users?NamesOnly=true',
      ]) {
        const r = await app.inject({ url, headers: as('read-only') });
        expect(r.statusCode, url).toBe(200);
        const names = r.json<unknown[]>();
        expect(Array.isArray(names)).toBe(true);
        for (const n of names) expect(typeof n).toBe('string');
      }
      expect(
        (await app.inject({ url: '/api/pools', headers: as('user') })).json<string[]>()[0],
      ).toBe('none');
      expect((await app.inject({ url: '/api/maximumpriority', headers: as('user') })).json()).toBe(
        100,
      );
    });
  });
}

webServiceSuite('sqlite', () =>
  openStore(join(mkdtempSync(join(tmpdir(), 'drover-deadline-')), 'drover.db')),
);

await withPostgres('Deadline Web Service: postgres', () => {
  const dbs = new TestDatabases();
  beforeAll(() => dbs.prepareTemplate(), 60_000);
  afterAll(() => dbs.dropAll());
  webServiceSuite('postgres', async () => openStore(await dbs.clone()));
});
