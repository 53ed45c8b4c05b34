import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDeadlineCommand } from '../../src/cli/commands/deadline-command.js';
import { DroverClient } from '../../src/client/index.js';
import type { Job } from '../../src/core/types.js';
import { startManager, type RunningManager } from '../../src/manager/server.js';
import { CLI, FAST, until } from '../farm.js';
import { basic, call } from './deadline-http.js';

/**
 * Auxiliary files (Deadline's `AuxFiles`, deadlinecommand's extra arguments) on a real
 * manager with a real worker process: copied or uploaded before the job exists, fetched by
 * the worker into the task's folder, `<AUXFILE0>` resolved to the local copy; and every way
 * of asking for a file the manager must not hand out refused with a 4xx that changes nothing.
 */

let dir: string;
let root: string;
let manager: RunningManager;
let deadline: string;
let adminAuth: string;
let artistToken: string;
let otherToken: string;
let workerToken: string;
let worker: ChildProcess;

const submit = (body: unknown, auth = adminAuth) =>
  call('POST', `${deadline}/api/jobs`, body, auth);

async function untilDone(id: string): Promise<Job> {
  return until(
    `job ${id} completed`,
    async () => {
      const job = await manager.farm.store.fetchJob(id);
      if (job?.state === 'failed') {
        const log = await manager.farm.store.readTaskLog(id, 0, {});
        throw new Error(`job ${id} failed: ${log.chunks.map((c) => c.text).join('')}`);
      }
      return job?.state === 'completed' ? job : undefined;
    },
    60_000,
  );
}

async function logOf(id: string): Promise<string> {
  const log = await manager.farm.store.readTaskLog(id, 0, {});
  return log.chunks.map((c) => c.text).join('');
}

function file(name: string, content: string | Buffer, folder = root): string {
  const path = join(folder, name);
  writeFileSync(path, content);
  return path;
}

const catJob = (auxFiles: unknown) => ({
  JobInfo: { Plugin: 'CommandLine', Name: 'aux', Frames: '1' },
  PluginInfo: { Executable: '/bin/cat', Arguments: '<AUXFILE0>' },
  AuxFiles: auxFiles,
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'drover-aux-'));
  root = join(dir, 'projects');
  mkdirSync(root);
  manager = await startManager({
    dataDir: join(dir, 'data'),
    port: 0,
    deadlinePort: 0,
    deadlineAuxRoots: [root],
    settings: FAST,
    logger: pino({ level: 'silent' }),
  });
  deadline = manager.deadlineUrl!;
  adminAuth = basic('admin', manager.adminToken!);
  artistToken = (await manager.auth!.createToken('artist', 'user')).secret;
  otherToken = (await manager.auth!.createToken('other', 'user')).secret;
  workerToken = (await manager.auth!.createToken('aux-workers', 'worker')).secret;
  worker = spawn(
    process.execPath,
    [CLI, 'worker', '--manager', manager.url, '--name', 'aux-w1', '--log-level', 'warn'],
    { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DROVER_TOKEN: workerToken } },
  );
  await until('the worker', async () => (await manager.farm.store.listWorkers()).length === 1);
}, 60_000);

afterAll(async () => {
  if (worker.exitCode === null && worker.signalCode === null) {
    const exited = new Promise((done) => worker.once('exit', done));
    worker.kill('SIGKILL');
    await exited;
  }
  await manager.close();
});

describe('Web Service AuxFiles', () => {
  it('copied into the data directory, fetched into the task folder, <AUXFILE0> resolved', async () => {
    const marker = randomBytes(8).toString('hex');
    const scene = file('scene.txt', `scene ${marker}\n`);
    const r = await submit(catJob([scene]));
    expect(r.status, r.text).toBe(200);
    const reply = r.json<{ _id: string; Aux: string[]; Props: { Env: Record<string, string> } }>();
    expect(reply.Aux).toEqual(['scene.txt']);
    // Drover's own variables are not shown: clients copy Env into the next job.
    expect(Object.keys(reply.Props.Env)).toEqual([]);
    // Changing the original after submission changes nothing: the job has its own copy.
    writeFileSync(scene, 'changed\n');
    await untilDone(reply._id);
    const log = await logOf(reply._id);
    expect(log).toContain(`scene ${marker}`);
    expect(log).not.toContain('changed');
    // The task's folder is removed once the task ended.
    await until('the task folder removed', () =>
      readdirSync(tmpdir()).every((n) => !n.startsWith(`drover-task-${reply._id}_0-`)),
    );
  });

  it('the task starts in the folder holding the files (a relative script name works)', async () => {
    const marker = randomBytes(8).toString('hex');
    const r = await submit({
      JobInfo: { Plugin: 'CommandLine', Frames: '1' },
      PluginInfo: { Executable: '/bin/sh', Arguments: 'run.sh' },
      AuxFiles: [file('run.sh', `echo "script ${marker} in $DROVER_AUX_DIRECTORY"; pwd\n`)],
    });
    expect(r.status, r.text).toBe(200);
    const id = r.json<{ _id: string }>()._id;
    await untilDone(id);
    const log = await logOf(id);
    const folder = new RegExp(`script ${marker} in (\\S+)`).exec(log)?.[1];
    expect(folder).toMatch(/drover-task-/);
    expect(log).toContain(`\n${folder}\n`);
  });

  it('a user token reads paths inside --deadline-aux-root only', async () => {
    const inside = await submit(catJob([file('ok.txt', 'fine\n')]), basic('artist', artistToken));
    expect(inside.status, inside.text).toBe(200);
    await untilDone(inside.json<{ _id: string }>()._id);
    const outside = file('outside.txt', 'secret\n', dir);
    const refused = await submit(catJob([outside]), basic('artist', artistToken));
    expect(refused.status).toBe(400);
    expect(refused.text).toMatch(/^AuxFiles\.0: .*--deadline-aux-root/);
  });

  it('refused with a 400 naming AuxFiles, and nothing is created', async () => {
    const big = file('big.bin', '');
    truncateSync(big, 64 * 1024 * 1024 + 1);
    mkdirSync(join(root, 'folder'));
    symlinkSync(join(dir, 'data', 'admin-token'), join(root, 'token-link'));
    const cases: [unknown, RegExp][] = [
      [[big], /^AuxFiles: at most 67108864 bytes/],
      [[file('half.bin', Buffer.alloc(40 * 1024 * 1024)), join(root, 'half.bin')], /^AuxFiles:/],
      [[join(root, 'folder')], /^AuxFiles\.0: .* not a regular file/],
      [[join(dir, 'data', 'admin-token')], /^AuxFiles\.0: .*never reads/],
      [[join(root, 'token-link')], /^AuxFiles\.0: .*never reads/],
      [['/proc/self/environ'], /^AuxFiles\.0: .*never reads/],
      [[join(root, 'missing.txt')], /^AuxFiles\.0: .*no such file/],
      [['relative.txt'], /^AuxFiles\.0: .*absolute/],
      [[42], /^AuxFiles\.0:/],
      [{ a: 1 }, /^AuxFiles: must be a list/],
    ];
    const jobsBefore = (await manager.farm.store.listJobs({ all: true, limit: 1000 })).length;
    const auxDir = join(dir, 'data', 'aux-files');
    const filesBefore = readdirSync(auxDir).length;
    for (const [aux, message] of cases) {
      const r = await submit(catJob(aux));
      expect(r.status, `${JSON.stringify(aux)}: ${r.text}`).toBe(400);
      expect(r.text).toMatch(message);
    }
    // A job refused after its files were copied leaves none behind.
    const badJob = await submit({
      ...catJob([file('x.txt', 'x')]),
      JobInfo: { Plugin: 'CommandLine', Priority: 300 },
    });
    expect(badJob.status).toBe(400);
    expect((await manager.farm.store.listJobs({ all: true, limit: 1000 })).length).toBe(jobsBefore);
    expect(readdirSync(auxDir).length).toBe(filesBefore);
  });
});

describe('deadlinecommand and the native upload', () => {
  const client = () => new DroverClient({ url: manager.url, token: artistToken });

  it('deadlinecommand JOBINFO PLUGININFO AUX… uploads the files (in chunks) and the job reads them', async () => {
    const blob = randomBytes(2 * 1024 * 1024 + 12345);
    const hash = createHash('sha256').update(blob).digest('hex');
    const jobInfo = file('job.txt', 'Plugin=CommandLine\nName=aux upload\nFrames=1\n', dir);
    const pluginInfo = file(
      'plugin.txt',
      'Executable=/usr/bin/sha256sum\nArguments=<AUXFILE1> <AUXFILE0>\n',
      dir,
    );
    const lines: string[] = [];
    const code = await runDeadlineCommand(
      [jobInfo, pluginInfo, file('notes.txt', 'notes\n', dir), file('blob.bin', blob, dir)],
      { out: (l) => lines.push(l), client: client(), url: manager.url },
    );
    expect(code, lines.join('\n')).toBe(0);
    expect(lines).toContain('Submitting 2 auxiliary files.');
    const id = lines.find((l) => l.startsWith('JobID='))!.slice(6);
    const job = await untilDone(id);
    expect(job.user).toBe('artist');
    const log = await logOf(id);
    expect(log).toMatch(new RegExp(`${hash}\\s+\\S*blob\\.bin`));
  });

  it('-SubmitMultipleJobsV2: index://N dependencies name the jobs before', async () => {
    const jobInfo = file('v2job.txt', 'Plugin=CommandLine\nFrames=1\n', dir);
    const pluginInfo = file('v2plugin.txt', 'Executable=/bin/echo\nArguments=v2\n', dir);
    const json = file(
      'jobs.json',
      JSON.stringify({
        Jobs: [
          { JobInfoFilePath: jobInfo, PluginInfoFilePath: pluginInfo },
          {
            JobInfoFilePath: jobInfo,
            PluginInfoFilePath: pluginInfo,
            JobDependencies: ['index://0'],
          },
        ],
      }),
      dir,
    );
    const lines: string[] = [];
    const code = await runDeadlineCommand(['-SubmitMultipleJobsV2', '-jsonfilepath', json], {
      out: (l) => lines.push(l),
      client: client(),
      url: manager.url,
    });
    expect(code, lines.join('\n')).toBe(0);
    const ids = lines.filter((l) => l.startsWith('JobID=')).map((l) => l.slice(6));
    expect(ids).toHaveLength(2);
    const second = await untilDone(ids[1]!);
    expect(second.dependencies).toEqual([ids[0]]);
    const bad = file(
      'bad.json',
      JSON.stringify({
        Jobs: [
          {
            JobInfoFilePath: jobInfo,
            PluginInfoFilePath: pluginInfo,
            JobDependencies: ['index://3'],
          },
        ],
      }),
      dir,
    );
    const badLines: string[] = [];
    expect(
      await runDeadlineCommand(['-SubmitMultipleJobsV2', '-jsonfilepath', bad], {
        out: (l) => badLines.push(l),
        client: client(),
        url: manager.url,
      }),
    ).toBe(2);
    expect(badLines[badLines.length - 2]).toBe('Result=Failure');
  });

  it("uploads are their owner's; chunks must follow each other; bad input is a 400", async () => {
    const api = `${manager.url}/api/v1`;
    const artist = `Bearer ${artistToken}`;
    const other = `Bearer ${otherToken}`;
    const up = await call('POST', `${api}/aux-files`, { name: '../x.ma', content: 'aGk=' }, artist);
    expect(up.status, up.text).toBe(201);
    const { ref, name, size } = up.json<{ auxFile: { ref: string; name: string; size: number } }>()
      .auxFile;
    expect([name, size]).toEqual(['x.ma', 2]);
    const jobsBefore = (await manager.farm.store.listJobs({ all: true, limit: 1000 })).length;
    const cmd = { executable: '/bin/cat', arguments: ['<AUXFILE0>'] };
    const cases: [string, unknown, string, number, RegExp][] = [
      [
        'jobs',
        { plugin: 'CommandLine', pluginInfo: cmd, auxFiles: [ref] },
        other,
        400,
        /auxFiles\.0/,
      ],
      [
        'jobs',
        { plugin: 'CommandLine', pluginInfo: cmd, auxFiles: ['nope'] },
        artist,
        400,
        /auxFiles\.0/,
      ],
      [
        'jobs',
        { plugin: 'CommandLine', pluginInfo: cmd, auxFiles: [ref, ref] },
        artist,
        400,
        /auxFiles\.1/,
      ],
      ['aux-files', { name: 'x.ma', content: 'aGk=', ref, offset: 0 }, artist, 400, /offset/],
      ['aux-files', { name: 'x.ma', content: 'aGk=', ref, offset: 2 }, other, 400, /ref/],
      ['aux-files', { name: 'x.ma', content: '***' }, artist, 400, /content/],
      ['aux-files', { name: 'x.ma', content: 'aGk=' }, `Bearer ${workerToken}`, 403, /token/],
      ['aux-files', { name: 'x.ma', content: 'aGk=' }, 'Bearer nope', 401, /token/],
    ];
    for (const [path, body, auth, status, message] of cases) {
      const r = await call('POST', `${api}/${path}`, body, auth);
      expect(r.status, `${path} ${JSON.stringify(body)}: ${r.text}`).toBe(status);
      expect(r.text).toMatch(message);
    }
    expect((await manager.farm.store.listJobs({ all: true, limit: 1000 })).length).toBe(jobsBefore);
    // The owner may use it (and append the next chunk first).
    const more = await call(
      'POST',
      `${api}/aux-files`,
      { name: 'x.ma', content: 'IQ==', ref, offset: 2 },
      artist,
    );
    expect(more.json<{ auxFile: { size: number } }>().auxFile.size).toBe(3);
    const ok = await call(
      'POST',
      `${api}/jobs`,
      { plugin: 'CommandLine', pluginInfo: cmd, auxFiles: [ref] },
      artist,
    );
    expect(ok.status, ok.text).toBe(201);
    const id = ok.json<{ job: { id: string } }>().job.id;
    await untilDone(id);
    expect(await logOf(id)).toContain('hi!');
  });

  it('house cleaning removes the files of deleted jobs and uploads no job named', async () => {
    const auxDir = join(dir, 'data', 'aux-files');
    const r = await submit(catJob([file('kept.txt', 'kept\n')]));
    const id = r.json<{ _id: string }>()._id;
    await untilDone(id);
    const job = (await manager.farm.store.fetchJob(id))!;
    const folderOf = (ref: string) => join(auxDir, ref.slice(0, ref.indexOf('/')));
    const folder = folderOf(JSON.parse(job.environment.DROVER_AUX_FILES!)[0] as string);
    const up = await call(
      'POST',
      `${manager.url}/api/v1/aux-files`,
      { name: 'never.ma', content: 'aGk=' },
      `Bearer ${artistToken}`,
    );
    const unclaimed = folderOf(up.json<{ auxFile: { ref: string } }>().auxFile.ref);
    const state = async (j: string) => (await manager.farm.store.fetchJob(j))?.state;
    const files = manager.farm.auxFiles!;
    await files.clean(state);
    expect(readdirSync(auxDir)).toEqual(
      expect.arrayContaining([basename(folder), basename(unclaimed)]),
    );
    // A day later the upload no job named goes; the completed job's files stay (it may be requeued).
    await files.clean(state, undefined, Date.now() + 25 * 3600_000);
    expect(readdirSync(auxDir)).toContain(basename(folder));
    expect(readdirSync(auxDir)).not.toContain(basename(unclaimed));
    await manager.farm.jobAction(id, 'delete');
    await files.clean(state);
    expect(readdirSync(auxDir)).not.toContain(basename(folder));
  });

  it('a worker reads the files of jobs it holds a task of, only', async () => {
    const r = await submit(catJob([file('held.txt', 'held\n')]));
    const id = r.json<{ _id: string }>()._id;
    await untilDone(id);
    const url = `${manager.url}/api/v1/workers/aux-w1/aux-files/${id}/0`;
    const asWorker = await call('GET', url, undefined, `Bearer ${workerToken}`);
    expect(asWorker.status, asWorker.text).toBe(404);
    expect(asWorker.text).toMatch(/holds no task/);
    const asUser = await call('GET', url, undefined, `Bearer ${artistToken}`);
    expect(asUser.status).toBe(403);
  });
});
