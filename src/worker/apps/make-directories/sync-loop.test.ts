import { describe, expect, it } from 'vitest';
import type { DirectorySync } from '../../../gfs/contract.js';
import { waitForSync } from './sync-loop.js';

function state(path: string, onGfs: boolean, synced: boolean): DirectorySync {
  return {
    path,
    onGfs,
    synced,
    sites: onGfs ? [{ site: 'eu-west-2', synced, sendTime: synced ? 1 : null }] : [],
  };
}

describe('waitForSync', () => {
  it('resolves each directory as complete, skipped or timed out, and stops early', async () => {
    const lines: string[] = [];
    let sleeps = 0;
    let round = 0;
    const outcomes = await waitForSync({
      directories: ['/a', '/b', '/c'],
      iterationCount: 5,
      iterationDelayMs: 1000,
      check: (dir) =>
        Promise.resolve(
          dir === '/b'
            ? state(dir, false, false)
            : state(dir, true, dir === '/a' ? round >= 1 : false),
        ),
      sleep: () => {
        sleeps++;
        round++;
        return Promise.resolve();
      },
      print: (l) => lines.push(l),
    });
    expect(outcomes).toEqual(['Sync Complete', 'Sync Skipped', 'Sync Timed Out']);
    expect(lines.filter((l) => l.startsWith('Iteration'))).toEqual([
      'Iteration 1/5. Progress: 20%',
      'Iteration 2/5. Progress: 40%',
      'Iteration 3/5. Progress: 60%',
      'Iteration 4/5. Progress: 80%',
      'Iteration 5/5. Progress: 100%',
    ]);
    expect(sleeps).toBe(4);
  });

  it('checks before sleeping: already-synced folders cost no wait', async () => {
    let sleeps = 0;
    const outcomes = await waitForSync({
      directories: ['/a'],
      iterationCount: 20,
      iterationDelayMs: 1000,
      check: (dir) => Promise.resolve(state(dir, true, true)),
      sleep: () => Promise.resolve(void sleeps++),
      print: () => undefined,
    });
    expect(outcomes).toEqual(['Sync Complete']);
    expect(sleeps).toBe(0);
  });

  it('reports every directory timed out when the count is 0', async () => {
    const outcomes = await waitForSync({
      directories: ['/a', '/b'],
      iterationCount: 0,
      iterationDelayMs: 0,
      check: () => Promise.reject(new Error('never asked')),
      sleep: () => Promise.resolve(),
      print: () => undefined,
    });
    expect(outcomes).toEqual(['Sync Timed Out', 'Sync Timed Out']);
  });
});
