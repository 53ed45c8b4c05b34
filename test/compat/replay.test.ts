import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/types.js';
import { startManager, type RunningManager } from '../../src/manager/server.js';
import { CLI, FAST, killProcess, until } from '../farm.js';
import { basic, call as httpCall, type TextAnswer } from './deadline-http.js';

/**
 * Replays of what real Deadline clients send (../shared/reference/deadline-webservice.md)
 * against a real manager serving the Deadline Web Service, with real worker processes
 * running the jobs: Ayon's render + dependent publish, OpenPype's numbered JobDependency0,
 * Thinkbox's shell (curl) and standalone Python API examples, and `deadlinecommand` with info
 * files. Ayon's and OpenPype's jobs name their DCC plugins (MayaBatch, Ayon); here they run
 * as CommandLine so the test farm can run them — the JobInfo is theirs key for key.
 */

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '..', '..', 'bin');
const SH = '/bin/sh';

let dir: string;
let manager: RunningManager;
let deadline: string;
let adminAuth: string;
let artistToken: string;
const workers: ChildProcess[] = [];

async function call(
  method: string,
  path: string,
  body?: unknown,
  auth = adminAuth,
): Promise<TextAnswer> {
  return httpCall(method, `${deadline}${path}`, body, auth);
}

async function jobOf(id: string): Promise<Job> {
  const job = await manager.farm.store.fetchJob(id);
  if (!job) throw new Error(`no job ${id}`);
  return job;
}

async function untilState(id: string, state: Job['state'], timeoutMs = 60_000): Promise<Job> {
  return until(
    `job ${id} ${state}`,
    async () => {
      const job = await jobOf(id);
      if (job.state === 'failed' && state !== 'failed') throw new Error(`job ${id} failed`);
      return job.state === state ? job : undefined;
    },
    timeoutMs,
  );
}

async function logOf(id: string, index = 0): Promise<string> {
  const log = await manager.farm.store.readTaskLog(id, index, {});
  return log.chunks.map((c) => c.text).join('');
}

type DeadlineJob = {
  _id: string;
  Stat: number;
  Props: { Batch: string; User: string; Env: Record<string, string>; Frames: string; Name: string };
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'drover-deadline-replay-'));
  manager = await startManager({
    dataDir: dir,
    port: 0,
    deadlinePort: 0,
    settings: FAST,
    logger: pino({ level: 'silent' }),
  });
  deadline = manager.deadlineUrl!;
  adminAuth = basic('admin', manager.adminToken!);
  artistToken = (await manager.auth!.createToken('artist', 'user')).secret;
  const { secret: workerToken } = await manager.auth!.createToken('test-workers', 'worker');
  for (const name of ['w1', 'w2']) {
    workers.push(
      spawn(
        process.execPath,
        [CLI, 'worker', '--manager', manager.url, '--name', name, '--log-level', 'warn'],
        {
          stdio: ['ignore', 'inherit', 'inherit'],
          env: { ...process.env, DROVER_TOKEN: workerToken },
        },
      ),
    );
  }
  await until('two workers', async () => (await manager.farm.store.listWorkers()).length === 2);
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map(killProcess));
  await manager.close();
});

describe('Deadline clients replayed against a real farm', () => {
  it('GET / answers the banner Ayon checks', async () => {
    const r = await fetch(`${deadline}/`);
    expect(await r.text()).toMatch(/^Deadline Web Service /);
  });

  it('Ayon: a render job, then a publish job built from Props.Batch/User/Env, runs after it', async () => {
    const auth = basic('artist', artistToken);
    const out = join(dir, 'ayon', 'renders');
    // Ayon's JobInfo for a Maya render (its MayaBatch plugin run here as CommandLine).
    const render = await call(
      'POST',
      '/api/jobs',
      {
        JobInfo: {
          BatchName: 'sh010_lighting_v001.ma',
          Name: 'sh010_lighting_v001.ma - renderMain',
          UserName: 'artist',
          Plugin: 'CommandLine',
          Frames: '1001-1004',
          ChunkSize: 2,
          Priority: 50,
          Pool: '',
          SecondaryPool: '',
          Group: '',
          Department: '',
          Comment: '',
          MachineLimit: 0,
          Whitelist: '',
          Blacklist: '',
          LimitGroups: '',
          OutputDirectory0: out,
          OutputFilename0: 'sh010_####.exr',
          EnvironmentKeyValue0: 'AYON_PROJECT_NAME=demo',
          EnvironmentKeyValue1: 'AYON_FOLDER_PATH=/shots/sh010',
          ExtraInfoKeyValue0: 'AYON_VERSION=1',
          ResumeOnCompleteDependencies: true,
          AssetDependency0: '/proj/sh010_lighting_v001.ma',
        },
        PluginInfo: {
          Executable: SH,
          Arguments: '-c "echo render <STARTFRAME>-<ENDFRAME> $AYON_PROJECT_NAME"',
          SceneFile: '/proj/sh010_lighting_v001.ma',
          Version: 2024,
          Camera: null,
        },
        AuxFiles: [],
      },
      auth,
    );
    expect(render.status, render.text).toBe(200);
    const renderJob = render.json<DeadlineJob>();
    expect(renderJob._id).toMatch(/^[0-9a-f]{24}$/);

    // What Ayon's publish submitter reads from the stored reply.
    const { Batch, User, Env } = renderJob.Props;
    expect([Batch, User, Env.AYON_PROJECT_NAME]).toEqual([
      'sh010_lighting_v001.ma',
      'artist',
      'demo',
    ]);
    const envKeys = Object.entries(Env).map(([k, v], i) => [
      `EnvironmentKeyValue${i}`,
      `${k}=${v}`,
    ]);
    const publish = await call(
      'POST',
      '/api/jobs',
      {
        JobInfo: {
          Plugin: 'CommandLine',
          BatchName: Batch,
          Name: 'Publish - renderMain',
          UserName: User,
          Department: '',
          Priority: 50,
          InitialStatus: 'Active',
          Group: '',
          Pool: '',
          JobDependency0: renderJob._id,
          ...Object.fromEntries(envKeys),
          OutputDirectory0: out,
        },
        PluginInfo: {
          Executable: SH,
          Arguments: '-c "echo publish $AYON_PROJECT_NAME $AYON_FOLDER_PATH"',
        },
        AuxFiles: [],
      },
      auth,
    );
    expect(publish.status, publish.text).toBe(200);
    const publishJob = publish.json<DeadlineJob>();

    const renderDone = await untilState(renderJob._id, 'completed');
    const publishDone = await untilState(publishJob._id, 'completed');
    expect(publishDone.startedAt!).toBeGreaterThanOrEqual(renderDone.finishedAt!);
    expect(await logOf(renderJob._id, 0)).toContain('render 1001-1002 demo');
    expect(await logOf(publishJob._id)).toContain('publish demo /shots/sh010');

    // What Ayon reads back later: the stored job, as submitted.
    const back = await call('GET', `/api/jobs?JobID=${renderJob._id}`, undefined, auth);
    const [again] = back.json<DeadlineJob[]>();
    expect(again!.Stat).toBe(3);
    expect(again!.Props.Frames).toBe('1001-1004');
  }, 90_000);

  it('OpenPype: numbered JobDependency0 on a job submitted suspended, resumed by PUT', async () => {
    const first = await call('POST', '/api/jobs', {
      JobInfo: {
        Plugin: 'CommandLine',
        Name: 'op render',
        Frames: 1,
        InitialStatus: 'Suspended',
      },
      PluginInfo: { Executable: SH, Arguments: '-c "echo op-render"' },
    });
    expect(first.status, first.text).toBe(200);
    const firstId = first.json<DeadlineJob>()._id;
    expect(first.json<DeadlineJob>().Stat).toBe(2);
    const second = await call('POST', '/api/jobs', {
      JobInfo: {
        Plugin: 'CommandLine',
        Name: 'op publish',
        Frames: '0',
        JobDependency0: firstId,
        ResumeOnCompleteDependencies: 'true',
      },
      PluginInfo: { Executable: SH, Arguments: '-c "echo op-publish"' },
    });
    const secondId = second.json<DeadlineJob>()._id;
    expect(second.json<DeadlineJob>().Stat).toBe(6);
    // Held by the suspended dependency, it does not run.
    expect((await jobOf(secondId)).state).toBe('pending');
    const resume = await call('PUT', '/api/jobs', { Command: 'resume', JobID: firstId });
    expect(resume.text).toBe('Success');
    const firstDone = await untilState(firstId, 'completed');
    const secondDone = await untilState(secondId, 'completed');
    expect(secondDone.startedAt!).toBeGreaterThanOrEqual(firstDone.finishedAt!);
  }, 90_000);

  it("Thinkbox's shell example: curl without a JSON content type; PUT with only Accept", async () => {
    const body = JSON.stringify({
      JobInfo: { Plugin: 'CommandLine', Name: 'curl job', Frames: '1-2', ChunkSize: '1' },
      PluginInfo: { Executable: SH, Arguments: '-c "echo curl <STARTFRAME>"' },
      AuxFiles: [],
      IdOnly: true,
    });
    // `curl --data` sends application/x-www-form-urlencoded.
    const posted = await fetch(`${deadline}/api/jobs`, {
      method: 'POST',
      headers: { authorization: adminAuth, 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    const text = await posted.text();
    expect(posted.status, text).toBe(200);
    const { _id: id } = JSON.parse(text) as { _id: string };
    const put = await fetch(`${deadline}/api/jobs`, {
      method: 'PUT',
      headers: { authorization: adminAuth, accept: 'application/json' },
      body: JSON.stringify({ Command: 'suspend', JobID: id }),
    });
    expect(await put.text()).toBe('Success');
    await fetch(`${deadline}/api/jobs`, {
      method: 'PUT',
      headers: { authorization: adminAuth },
      body: JSON.stringify({ Command: 'resume', JobID: id }),
    });
    await untilState(id, 'completed');
    const tasks = await call('GET', `/api/tasks?JobID=${id}`);
    expect(tasks.json<{ Tasks: { Stat: number }[] }>().Tasks.map((t) => t.Stat)).toEqual([5, 5]);
    const reports = await call('GET', `/api/jobreports?JobID=${id}&Data=allcontents`);
    expect(reports.text).toContain('curl 2');
  }, 90_000);

  it("Thinkbox's standalone Python API: Jobs.SubmitJob, GetJob, Pools, Groups", async () => {
    // Deadline.Jobs.SubmitJob(info, plugin, aux=[], idOnly=False) posts exactly this.
    const r = await call('POST', '/api/jobs', {
      JobInfo: { Plugin: 'CommandLine', Name: 'standalone', Frames: '5', UserName: 'pipeline' },
      PluginInfo: { Executable: SH, Arguments: '-c "echo standalone"' },
      AuxFiles: [],
      IdOnly: false,
    });
    const job = r.json<DeadlineJob>();
    expect(job.Props.User).toBe('pipeline');
    await untilState(job._id, 'completed');
    const pools = await call('GET', '/api/pools?NamesOnly=true');
    expect(pools.json()).toEqual(['none']);
    const names = await call('GET', '/api/slaves?NamesOnly=true');
    expect(names.json<string[]>().sort()).toEqual(['w1', 'w2']);
  }, 90_000);

  it('deadlinecommand JOBINFO PLUGININFO (UTF-16 and CRLF info files) prints Result=Success and a JobID drover job finds', async () => {
    const jobFile = join(dir, 'job.txt');
    const pluginFile = join(dir, 'plugin.txt');
    const jobText = [
      'Plugin=CommandLine',
      'Name=dc job',
      'Frames=1-2',
      'ChunkSize=2',
      'ExtraInfoKeyValue0=URL=http://x/?a=b',
      'UnknownKey=1',
    ].join('\r\n');
    writeFileSync(
      jobFile,
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(jobText, 'utf16le')]),
    );
    writeFileSync(pluginFile, `Executable=${SH}\r\nArguments=-c "echo dc <STARTFRAME>-<ENDFRAME>"`);
    const env = { ...process.env, DROVER_URL: manager.url, DROVER_TOKEN: manager.adminToken! };
    const { stdout } = await run(
      process.execPath,
      [join(BIN, 'deadlinecommand.js'), jobFile, pluginFile],
      { env },
    );
    expect(stdout).not.toContain('\r');
    const lines = stdout.split('\n');
    expect(lines).toContain('Result=Success');
    expect(lines.some((l) => l.includes('Key-value pair not supported: JobInfo.UnknownKey'))).toBe(
      true,
    );
    const id = lines.find((l) => l.startsWith('JobID'))!.split('=')[1]!;
    expect(id).toMatch(/^[0-9a-f]{24}$/);
    const job = await untilState(id, 'completed');
    expect(job.extraInfo.URL).toBe('http://x/?a=b');
    expect(await logOf(id)).toContain('dc 1-2');
    const found = await run(process.execPath, [CLI, 'job', id, '--json'], { env });
    expect(JSON.parse(found.stdout)).toMatchObject({ id });
  }, 90_000);

  it('deadlinecommand -SubmitMultipleJobs -dependent, an argument file, and deadlinecommandbg', async () => {
    const env = { ...process.env, DROVER_URL: manager.url, DROVER_TOKEN: manager.adminToken! };
    const files: string[] = [];
    for (const name of ['a', 'b']) {
      writeFileSync(join(dir, `${name}.job`), `Plugin=CommandLine\nName=multi ${name}\nFrames=0\n`);
      writeFileSync(
        join(dir, `${name}.plugin`),
        `Executable=${SH}\nArguments=-c "echo multi-${name}"\n`,
      );
      files.push(join(dir, `${name}.job`), join(dir, `${name}.plugin`));
    }
    const argFile = join(dir, 'args.txt');
    writeFileSync(
      argFile,
      [
        '-SubmitMultipleJobs',
        '-dependent',
        '-job',
        files[0],
        files[1],
        '-Job',
        files[2],
        files[3],
      ].join('\n'),
    );
    const { stdout } = await run(process.execPath, [join(BIN, 'deadlinecommand.js'), argFile], {
      env,
    });
    const ids = stdout
      .split('\n')
      .filter((l) => l.startsWith('JobID='))
      .map((l) => l.slice(6));
    expect(ids).toHaveLength(2);
    expect((await jobOf(ids[1]!)).dependencies).toEqual([ids[0]]);
    await untilState(ids[1]!, 'completed');

    const outDir = mkdtempSync(join(tmpdir(), 'drover-dsubmit-'));
    await run(
      process.execPath,
      [join(BIN, 'deadlinecommandbg.js'), '-outputfiles', outDir, files[0]!, files[1]!],
      { env },
    );
    const written = readFileSync(join(outDir, 'dsubmitoutput.txt'), 'utf8');
    expect(written).toMatch(/^Result=Success$/m);
    expect(written).toMatch(/^JobID=[0-9a-f]{24}$/m);

    // A failure: Result=Failure, the reason, a non-zero exit.
    const failed = await run(
      process.execPath,
      [join(BIN, 'deadlinecommand.js'), files[0]!, join(dir, 'missing.plugin')],
      { env },
    ).catch((err: { code: number; stdout: string }) => err);
    expect('code' in failed ? failed.code : 0).not.toBe(0);
    expect(failed.stdout).toMatch(/^Result=Failure$/m);
  }, 90_000);
});
