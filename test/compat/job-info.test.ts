import { describe, expect, it } from 'vitest';
import {
  deadlineKeyOf,
  inDeadlineTerms,
  jobInfoKeys,
  mapJobInfo,
} from '../../src/compat/deadline/job-info.js';
import { deadlineJob, jobStat, taskStat } from '../../src/compat/deadline/job-object.js';
import { DroverError } from '../../src/core/errors.js';
import { prepareSubmission } from '../../src/core/submission.js';
import type { Job } from '../../src/core/types.js';

const CMD = { Executable: '/bin/echo', Arguments: 'frame <STARTFRAME>' };

function map(jobInfo: Record<string, unknown>, pluginInfo: Record<string, unknown> = CMD) {
  return mapJobInfo({ Plugin: 'CommandLine', ...jobInfo }, pluginInfo);
}

/** Every single-valued key: what a client sends → the Drover field it fills. */
const cases: [key: string, sent: unknown, field: string, expected: unknown][] = [
  ['Plugin', 'CommandScript', 'plugin', 'CommandLine'],
  ['Name', 'shot010 render', 'name', 'shot010 render'],
  ['BatchName', 'shot010', 'batchName', 'shot010'],
  ['UserName', 'ana', 'user', 'ana'],
  ['MachineName', 'ws-12', 'machineName', 'ws-12'],
  ['Department', 'lighting', 'department', 'lighting'],
  ['Comment', 'a = b', 'comment', 'a = b'],
  ['Frames', 0, 'frames', '0'],
  ['ChunkSize', '5', 'chunkSize', 5],
  ['Priority', 70, 'priority', 70],
  ['Pool', 'gpu', 'pool', 'gpu'],
  ['SecondaryPool', 'cpu', 'secondaryPool', 'cpu'],
  ['Group', 'linux', 'group', 'linux'],
  ['MachineLimit', '3', 'machineLimit', 3],
  ['Whitelist', 'w1, w2', 'allowList', ['w1', 'w2']],
  ['Blacklist', ['w3'], 'denyList', ['w3']],
  ['LimitGroups', 'nuke,arnold', 'limits', ['nuke', 'arnold']],
  ['JobDependencies', 'a,b', 'dependencies', ['a', 'b']],
  ['IsFrameDependent', 'True', 'frameDependent', true],
  ['ResumeOnFailedDependencies', true, 'resumeOnFailedDependencies', true],
  ['ResumeOnDeletedDependencies', 'false', 'resumeOnDeletedDependencies', false],
  ['Region', 'eu-west-2', 'regions', ['eu-west-2']],
  ['InitialStatus', 'Suspended', 'initialState', 'suspended'],
  ['OnJobComplete', 'Archive', 'onComplete', 'archive'],
  ['TaskTimeoutSeconds', 90, 'taskTimeoutSeconds', 90],
  ['TaskTimeoutMinutes', '2', 'taskTimeoutSeconds', 120],
  ['FailureDetectionJobErrors', 7, 'jobErrorLimit', 7],
  ['FailureDetectionTaskErrors', 3, 'taskRetries', 2],
  ['EventOptIns', 'gfs-sync', 'eventOptIns', ['gfs-sync']],
];

describe('JobInfo → Drover job, key by key', () => {
  it('has a case for every key of the table', () => {
    expect(new Set(cases.map((c) => c[0]))).toEqual(new Set(Object.keys(jobInfoKeys)));
  });

  for (const [key, sent, field, expected] of cases) {
    it(`${key}=${JSON.stringify(sent)} → ${field}`, () => {
      const { submission, ignored } = map({ [key]: sent });
      expect(submission[field]).toEqual(expected);
      expect(ignored).toEqual([]);
      // Drover's own schema takes what the mapping made.
      expect(() => prepareSubmission(submission)).not.toThrow();
    });
  }

  it('keys sent empty leave the default (Whitelist: "", LimitGroups: "")', () => {
    const { submission } = map({ Whitelist: '', Blacklist: '', LimitGroups: '', Name: '' });
    const { submission: s } = prepareSubmission(submission);
    expect([s.allowList, s.denyList, s.limits, s.name]).toEqual([[], [], [], 'Untitled']);
  });

  it('ChunkSize 2147483647 makes one task of all frames', () => {
    const { submission } = map({ Frames: '1-100', ChunkSize: 2147483647 });
    const { submission: s, frames } = prepareSubmission(submission);
    expect(Math.ceil(frames.length / s.chunkSize)).toBe(1);
  });

  it('numbered keys, in index order, gaps allowed', () => {
    const { submission } = map({
      OutputDirectory1: '/out/b',
      OutputDirectory0: '/out/a',
      OutputFilename0: 'a_####.exr',
      JobDependency0: 'id1',
      JobDependency2: 'id3',
      JobDependencies: ['id0'],
      ExtraInfo0: 'shot010',
      ExtraInfoKeyValue0: 'AYON_PROJECT=demo',
      ExtraInfoKeyValue1: 'URL=http://x/?a=b',
      EnvironmentKeyValue0: 'AYON_RENDER_JOB=1',
    });
    expect(submission.outputDirectories).toEqual(['/out/a', '/out/b']);
    expect(submission.outputFilenames).toEqual(['a_####.exr']);
    expect(submission.dependencies).toEqual(['id0', 'id1', 'id3']);
    expect(submission.extraInfo).toEqual({
      ExtraInfo0: 'shot010',
      AYON_PROJECT: 'demo',
      URL: 'http://x/?a=b',
    });
    expect(submission.environment).toEqual({ AYON_RENDER_JOB: '1' });
  });

  it('ExtraInfoKeyValue DroverPublish=<product> publishes the job as that product', () => {
    const { submission } = map({ ExtraInfoKeyValue0: 'DroverPublish=show/sq010/sh010/beauty' });
    expect(submission.publish).toBe('show/sq010/sh010/beauty');
    expect(submission.extraInfo).toEqual({ DroverPublish: 'show/sq010/sh010/beauty' });
    expect(map({ ExtraInfoKeyValue0: 'Other=x' }).submission.publish).toBeUndefined();
  });

  it('CommandLine PluginInfo keys map to the CommandLine settings; others are listed', () => {
    const { submission, ignored } = map(
      { Foo: true },
      {
        Executable: '/bin/sh',
        Arguments: '-c "echo <STARTFRAME>"',
        StartupDirectory: '/tmp',
        SingleFramesOnly: 'True',
        Shell: 'default',
      },
    );
    expect(submission.pluginInfo).toEqual({
      executable: '/bin/sh',
      arguments: '-c "echo <STARTFRAME>"',
      workingDirectory: '/tmp',
      perFrame: true,
    });
    expect(ignored).toEqual(['JobInfo.Foo', 'PluginInfo.Shell']);
  });

  it('keys Drover already honours are accepted with the agreeing value only', () => {
    expect(map({ ResumeOnCompleteDependencies: true, ConcurrentTasks: 1 }).ignored).toEqual([]);
    expect(map({ ResumeOnCompleteDependencies: 'false', ConcurrentTasks: '4' }).ignored).toEqual([
      'JobInfo.ConcurrentTasks',
      'JobInfo.ResumeOnCompleteDependencies',
    ]);
  });

  it('other plugins keep their PluginInfo as sent, nulls left out', () => {
    const { submission } = mapJobInfo(
      { Plugin: 'MayaBatch' },
      { SceneFile: '/s.ma', Version: 2024, Camera: null },
    );
    expect(submission.plugin).toBe('MayaBatch');
    expect(submission.pluginInfo).toEqual({ SceneFile: '/s.ma', Version: 2024 });
  });

  it('bad values are 400s naming the Deadline key', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ Priority: 'high' }, 'JobInfo.Priority'],
      [{ IsFrameDependent: 'maybe' }, 'JobInfo.IsFrameDependent'],
      [{ InitialStatus: 'Paused' }, 'JobInfo.InitialStatus'],
      [{ ExtraInfoKeyValue0: 'no-equals' }, 'JobInfo.ExtraInfoKeyValue0'],
      [{ Name: { a: 1 } }, 'JobInfo.Name'],
      [{ ChunkSize: 0 }, 'JobInfo.ChunkSize'],
    ];
    for (const [info, key] of bad) {
      let err: unknown;
      try {
        map(info);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DroverError);
      expect((err as DroverError).field).toBe(key);
    }
    expect(() => mapJobInfo({ Name: 'x' }, {})).toThrow(/JobInfo.Plugin/);
    // Kept verbatim, so even keys Drover ignores must be storable text.
    expect(() => map({ 'Odd\u0000Key': 1 })).toThrow(/JobInfo\.Odd/);
    expect(() => map({ Stray: 'a\u0000b' })).toThrow(/JobInfo\.Stray/);
    expect(() => map({}, { ...CMD, Shell: { deep: '\ud800' } })).toThrow(/PluginInfo\.Shell\.deep/);
  });

  it("Drover's schema errors are told under the Deadline key", () => {
    const { submission } = map({ Priority: 101, OutputDirectory0: 'relative/dir' });
    let err: unknown;
    try {
      prepareSubmission(submission);
    } catch (e) {
      err = inDeadlineTerms(e);
    }
    expect((err as DroverError).field).toMatch(/^JobInfo\.(Priority|OutputDirectory0)$/);
    expect(deadlineKeyOf('priority')).toBe('JobInfo.Priority');
    expect(deadlineKeyOf('outputDirectories.0')).toBe('JobInfo.OutputDirectory0');
    expect(deadlineKeyOf('environment.X')).toBe('JobInfo.EnvironmentKeyValue');
    expect(deadlineKeyOf('pluginInfo.executable')).toBe('PluginInfo.Executable');
  });
});

describe('Drover job → Deadline job object', () => {
  const { submission, frames } = prepareSubmission(
    map({
      Name: 'render',
      BatchName: 'b',
      UserName: 'ana',
      Frames: '1-10x2,20',
      ChunkSize: 2147483647,
      ExtraInfo3: 'x',
      ExtraInfoKeyValue0: 'K=V',
      EnvironmentKeyValue0: 'A=1',
      OnJobComplete: 'Delete',
      Whitelist: 'w1',
    }).submission,
  );
  const job: Job = {
    ...submission,
    id: '0123456789abcdef01234567',
    state: 'rendering',
    pendingReason: '',
    frameCount: frames.length,
    taskCount: 1,
    counts: { pending: 0, queued: 0, rendering: 1, completed: 0, failed: 0, suspended: 0 },
    errorCount: 0,
    badWorkers: [],
    heldFor: [],
    pluginData: {
      deadline: {
        plugin: 'CommandScript',
        jobInfo: { ChunkSize: 2147483647 },
        pluginInfo: { Executable: '/bin/echo', Shell: null },
        ignored: [],
      },
    },
    submittedAt: Date.UTC(2026, 0, 2),
    startedAt: null,
    finishedAt: null,
  };

  it('answers _id, Stat, Props as sent and the chunk counters', () => {
    const d = deadlineJob(job) as { Props: unknown } & Record<string, unknown>;
    expect(d._id).toBe(job.id);
    expect(d.Stat).toBe(1);
    expect(d.Plug).toBe('CommandScript');
    expect(d.Date).toBe('2026-01-02T00:00:00.000Z');
    expect(d.DateComp).toBe('0001-01-01T00:00:00Z');
    expect(d.RenderingChunks).toBe(1);
    expect(d.Props).toMatchObject({
      Name: 'render',
      Batch: 'b',
      User: 'ana',
      Frames: '1-10x2,20',
      Chunk: 2147483647,
      Ex3: 'x',
      ExDic: { K: 'V' },
      Env: { A: '1' },
      OnComp: 1,
      White: true,
      ListedSlaves: ['w1'],
      PlugInfo: { Executable: '/bin/echo', Shell: '' },
    });
  });

  it('status codes are Deadline’s', () => {
    expect(jobStat).toMatchObject({ queued: 1, suspended: 2, completed: 3, failed: 4, pending: 6 });
    expect(taskStat).toEqual({
      queued: 2,
      suspended: 3,
      rendering: 4,
      completed: 5,
      failed: 6,
      pending: 8,
    });
  });
});
