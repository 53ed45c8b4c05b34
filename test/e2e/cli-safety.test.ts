import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, startFarm, type TestFarm } from '../farm.js';

const run = promisify(execFile);

/** Runs the real CLI; resolves with its output and exit code, also when it fails. */
async function cli(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      timeout: 30_000,
      env: { ...process.env, ...env },
    });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

/** Bytes a terminal would act on: C0 controls other than \n (and \t in logs), DEL, C1. */
// eslint-disable-next-line no-control-regex
const ACTIVE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('CLI output: terminal injection', () => {
  let farm: TestFarm;
  const evil = '\x1b]0;pwned\x07\x1b[31mred\nx';
  let jobId: string;

  beforeAll(async () => {
    farm = await startFarm();
    const job = await farm.client.submitJob({
      name: evil,
      plugin: 'CommandLine',
      pluginInfo: { executable: '/bin/true' },
      frames: '1',
    });
    jobId = job.id;
    // A render process that prints escape sequences: its log goes through the real store.
    const store = farm.manager.farm.store;
    await store.registerWorker({
      name: 'w-evil',
      region: 'default',
      pools: [],
      groups: [],
      slots: 1,
      capabilities: { cpus: 1, memoryMb: 1, os: 'linux', gpus: 0 },
      version: '',
    });
    const t = await store.claimTask('w-evil');
    await store.appendTaskLog('w-evil', {
      lease: t!.lease,
      chunks: [{ stream: 'stdout', text: `frame 1\n${evil}\n\x1b[2J\x9b31mdone\tok\n` }],
    });
  }, 60_000);
  afterAll(async () => {
    await farm.stop();
  });

  const env = () => ({ DROVER_URL: farm.manager.url, DROVER_TOKEN: farm.manager.adminToken! });

  it('escapes control characters in `drover jobs` and keeps one line per job', async () => {
    const r = await cli(['jobs'], env());
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(ACTIVE);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2); // the header and the one job
    expect(lines[1]).toContain('\\x1b]0;pwned\\x07\\x1b[31mred\\x0ax');
  });

  it('escapes them in `drover job` and `drover tasks`', async () => {
    for (const args of [['job', jobId], ['tasks', jobId], ['workers'], ['events']]) {
      const r = await cli(args, env());
      expect(r.code).toBe(0);
      expect(r.stdout).not.toMatch(ACTIVE);
    }
    const job = await cli(['job', jobId], env());
    expect(job.stdout).toMatch(/^name +\\x1b\]0;pwned\\x07\\x1b\[31mred\\x0ax$/m);
  });

  it('escapes them in `drover log`, keeping its lines and tabs', async () => {
    const r = await cli(['log', `${jobId}:0`], env());
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(ACTIVE);
    expect(r.stdout).toBe('frame 1\n\\x1b]0;pwned\\x07\\x1b[31mred\nx\n\\x1b[2J\\x9b31mdone\tok\n');
  });

  it('leaves --json raw: JSON escapes control characters itself', async () => {
    const r = await cli(['jobs', '--json'], env());
    expect(r.stdout).not.toMatch(ACTIVE);
    const list = JSON.parse(r.stdout) as Array<{ name: string }>;
    expect(list[0]?.name).toBe(evil);
  });
});

describe('CLI: a data directory that cannot be written', () => {
  // Tests run as root, whom permission bits do not stop: a path under a regular file fails
  // for anyone (ENOTDIR).
  const file = join(mkdtempSync(join(tmpdir(), 'drover-ro-')), 'a-file');
  writeFileSync(file, 'not a folder\n');
  const data = join(file, 'data');

  for (const command of ['manager', 'dev']) {
    it(`drover ${command} exits with one clear line, no stack trace`, async () => {
      const r = await cli([command, '--data', data, '--port', '0']);
      expect(r.code).toBe(7);
      expect(r.stderr.trim()).toBe(
        `drover: cannot write the data directory ${data}: a part of the path is a file, not a folder (ENOTDIR) — choose one this user can write (--data), or fix it`,
      );
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }, 40_000);
  }
});
