import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { RaceScenario } from '../../src/cli/demo/race.js';
import { CLI } from '../farm.js';

const run = promisify(execFile);

/** The demo's farm folders (each holds an admin token and worker tokens). */
const farmsIn = (dir: string) => readdirSync(dir).filter((f) => f.startsWith('drover-race-'));

describe('drover demo race', () => {
  it('reproduces the output-folder race without gfs-sync and prevents it with it', async () => {
    // Its own temporary folder, to see what the demo leaves behind.
    const tmp = mkdtempSync(join(tmpdir(), 'drover-race-test-'));
    const { stdout } = await run(
      process.execPath,
      [CLI, 'demo', 'race', '--json', '--sync-delay', '2', '--frames', '6'],
      {
        timeout: 170_000,
        maxBuffer: 10 * 1024 * 1024,
        env: { ...process.env, TMPDIR: tmp },
      },
    );
    const result = JSON.parse(stdout) as { disabled: RaceScenario; global: RaceScenario };
    expect(result.disabled.jobState).toBe('completed');
    expect(result.disabled.collisionFolders).toBeGreaterThan(0);
    expect(result.disabled.framesInIntendedFolder).toBeLessThan(6);
    expect(result.global.jobState).toBe('completed');
    expect(result.global.collisionFolders).toBe(0);
    expect(result.global.framesInIntendedFolder).toBe(6);
    for (const site of result.global.sites) expect(site.framesInIntendedFolder).toBe(6);
    expect(farmsIn(tmp)).toEqual([]);
  }, 180_000);

  it('removes its farm when interrupted with Ctrl-C', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'drover-race-test-'));
    const child = spawn(process.execPath, [CLI, 'demo', 'race', '--sync-delay', '2'], {
      env: { ...process.env, TMPDIR: tmp },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    // Wait (bounded) until the first farm is up and rendering: its folder holds tokens.
    const deadline = Date.now() + 60_000;
    while (!stderr.includes('rendering') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(farmsIn(tmp)).toHaveLength(1);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toContain('interrupted; the demo farms were stopped and removed');
    expect(farmsIn(tmp)).toEqual([]);
  }, 90_000);
});
