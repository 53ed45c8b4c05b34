import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startManager, type RunningManager } from './server.js';

/**
 * A farm's workers connect at once after a manager restart: the manager's listen backlog
 * must hold them (Node's default of 511 overflowed with 1,000 workers and reset some of their
 * connections; see `LISTEN_BACKLOG`). Whether an overflow resets anything depends on timing
 * (the benchmark shows it); the backlog itself is read back with `ss`. Linux only.
 */
const linux = process.platform === 'linux' && existsSync('/proc/sys/net/core/somaxconn');

describe.runIf(linux)('the listen backlog', () => {
  let manager: RunningManager;
  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'drover-listen-'));
    manager = await startManager({
      dataDir,
      port: 0,
      auth: false,
      logger: pino({ level: 'silent' }),
    });
  });
  afterAll(() => manager?.close());

  it('is as deep as the kernel allows, not Node’s 511', () => {
    const port = new URL(manager.url).port;
    // For a listening socket, ss shows the backlog in the Send-Q column.
    const line = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim();
    const backlog = Number(line.split(/\s+/)[2]);
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    expect(backlog).toBe(Math.min(65_535, somaxconn));
  });
});
