import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { prepareSubmission } from '../core/submission.js';
import { LOG_DIRECTORY_VARIABLE } from '../core/job-spec.js';
import { taskFixture } from './apps/task-fixture.js';
import { LogMirror, mirrorFileName } from './log-mirror.js';

const folders: string[] = [];
afterEach(() => {
  for (const f of folders.splice(0)) rmSync(f, { recursive: true, force: true });
});

describe('log mirror', () => {
  it('a job’s logDirectory travels in its environment, checked as an absolute path', () => {
    const { submission } = prepareSubmission({
      plugin: 'CommandLine',
      pluginInfo: { executable: 'true' },
      logDirectory: '/gfs/tmp/logs/',
    });
    expect(submission.environment[LOG_DIRECTORY_VARIABLE]).toBe('/gfs/tmp/logs');
    expect(() =>
      prepareSubmission({
        plugin: 'CommandLine',
        pluginInfo: { executable: 'true' },
        logDirectory: 'logs',
      }),
    ).toThrow(/logDirectory/);
  });

  it('appends each attempt to <jobId>_<task>.log, runner lines marked, and closes', async () => {
    const root = mkdtempSync(join(tmpdir(), 'drover-mirror-'));
    folders.push(root);
    const folder = join(root, 'not', 'yet');
    const errors: Error[] = [];
    for (const attempt of [1, 2]) {
      const task = taskFixture({
        jobId: 'job7',
        taskIndex: 3,
        attempt,
        environment: { [LOG_DIRECTORY_VARIABLE]: folder },
      });
      const mirror = LogMirror.open(task, 'w1', (e) => errors.push(e));
      expect(mirror?.path).toBe(join(folder, mirrorFileName('job7', 3)));
      mirror?.write('stdout', `frame ${attempt}\n`);
      mirror?.write('system', 'task completed\n');
      await mirror?.close();
    }
    expect(errors).toEqual([]);
    expect(readFileSync(join(folder, 'job7_3.log'), 'utf8')).toBe(
      '[drover] attempt 1 of task 3 of job job7 on w1\nframe 1\n[drover] task completed\n' +
        '[drover] attempt 2 of task 3 of job job7 on w1\nframe 2\n[drover] task completed\n',
    );
  });

  it('no logDirectory, no mirror; an unusable folder is reported, not thrown', () => {
    expect(LogMirror.open(taskFixture(), 'w1', () => undefined)).toBeUndefined();
    const root = mkdtempSync(join(tmpdir(), 'drover-mirror-'));
    folders.push(root);
    writeFileSync(join(root, 'a-file'), '');
    const errors: Error[] = [];
    const task = taskFixture({
      environment: { [LOG_DIRECTORY_VARIABLE]: join(root, 'a-file', 'logs') },
    });
    expect(LogMirror.open(task, 'w1', (e) => errors.push(e))).toBeUndefined();
    expect(errors).toHaveLength(1);
  });
});
