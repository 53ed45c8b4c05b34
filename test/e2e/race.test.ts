import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { RaceScenario } from '../../src/cli/demo/race.js';
import { CLI } from '../farm.js';

const run = promisify(execFile);

describe('drover demo race', () => {
  it('reproduces the output-folder race without gfs-sync and prevents it with it', async () => {
    const { stdout } = await run(
      process.execPath,
      [CLI, 'demo', 'race', '--json', '--sync-delay', '2', '--frames', '6'],
      {
        timeout: 170_000,
        maxBuffer: 10 * 1024 * 1024,
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
  }, 180_000);
});
