import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { killTree, procState, spawnTree } from './process-tree.js';

const posix = process.platform !== 'win32';

/** Alive = exists and is not a zombie (an orphan's zombie may never be reaped in a container). */
function alive(pid: number): boolean {
  if (process.platform === 'linux') {
    const s = procState(pid);
    return s !== undefined && s.state !== 'Z' && s.state !== 'X';
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const started: number[] = [];

afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Resolves with the first stdout line (the script prints what the test needs to know). */
function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => {
      text += d;
      const nl = text.indexOf('\n');
      if (nl >= 0) resolve(text.slice(0, nl));
    });
    child.on('error', reject);
    child.on('exit', () => reject(new Error(`exited before printing: ${text}`)));
  });
}

describe.runIf(posix)('killTree', () => {
  it('kills a child and the grandchild it started', async () => {
    const script = `
      const { spawn } = require('node:child_process');
      const g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      console.log(g.pid);
      setInterval(() => {}, 1000);
    `;
    const child = spawnTree([process.execPath, '-e', script], { env: process.env });
    const pid = child.pid!;
    started.push(pid);
    const grandchild = Number(await firstLine(child));
    expect(alive(pid)).toBe(true);
    expect(alive(grandchild)).toBe(true);

    const t0 = Date.now();
    await killTree(pid, { graceMs: 3_000 });
    expect(Date.now() - t0).toBeLessThan(2_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(alive(pid)).toBe(false);
    expect(alive(grandchild)).toBe(false);
  });

  it('SIGKILLs a tree that ignores SIGTERM after the grace period', async () => {
    const script = `
      process.on('SIGTERM', () => {});
      console.log('ready');
      setInterval(() => {}, 1000);
    `;
    const child = spawnTree([process.execPath, '-e', script], { env: process.env });
    const pid = child.pid!;
    started.push(pid);
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, s) => r(s)));
    expect(await firstLine(child)).toBe('ready');

    const t0 = Date.now();
    await killTree(pid, { graceMs: 500 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    expect(await exited).toBe('SIGKILL');
    expect(alive(pid)).toBe(false);
  });

  it('kills what is left when the leader has already exited', async () => {
    const script = `
      const { spawn } = require('node:child_process');
      const g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      console.log(g.pid);
      g.unref();
      setTimeout(() => process.exit(0), 100);
    `;
    const child = spawnTree([process.execPath, '-e', script], { env: process.env });
    const pid = child.pid!;
    started.push(pid);
    const grandchild = Number(await firstLine(child).catch(() => '0'));
    await new Promise((r) => child.once('exit', r));
    expect(alive(grandchild)).toBe(true);
    await killTree(pid, { graceMs: 1_000 });
    await new Promise((r) => setTimeout(r, 50));
    expect(alive(grandchild)).toBe(false);
  });

  it('does nothing for a tree that is already gone', async () => {
    const child = spawnTree([process.execPath, '-e', '0'], { env: process.env });
    await new Promise((r) => child.once('exit', r));
    await expect(killTree(child.pid!)).resolves.toBeUndefined();
  });
});
