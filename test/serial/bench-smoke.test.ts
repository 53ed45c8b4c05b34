import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * `npm run bench -- --quick` in CI: every scenario still runs and reports numbers. It asserts
 * no speed (these machines are noisy; BENCHMARKS.md holds the figures), only that each row is
 * a finite number and that the scheduling-quality counts are 0.
 */
describe('the benchmark, quick', () => {
  it('runs every scenario and keeps the scheduling promises', async () => {
    const { stdout } = await promisify(execFile)(
      'npm',
      ['run', '--silent', 'bench', '--', '--quick', '--json'],
      {
        timeout: 240_000,
        maxBuffer: 20 * 1024 * 1024,
      },
    );
    const rows = JSON.parse(stdout) as Array<{
      scenario: string;
      system: string;
      metric: string;
      value: number;
      unit: string;
    }>;
    const scenarios = new Set(rows.map((r) => r.scenario.split(' ')[0]));
    expect([...scenarios].sort()).toEqual(['1', '2', '3', '4', '5', '6', '7']);
    for (const r of rows) expect(Number.isFinite(r.value), JSON.stringify(r)).toBe(true);
    const quality = rows.filter(
      (r) => r.scenario.startsWith('6') && /skipped|overrun/.test(r.metric),
    );
    expect(quality.length).toBeGreaterThan(0);
    for (const r of quality) expect(r.value, JSON.stringify(r)).toBe(0);
  }, 300_000);
});
