import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DroverError } from '../core/errors.js';
import type { LogAppendInput } from '../core/worker-protocol.js';
import { LogShipper } from './log-shipper.js';
import { Spool, SpoolInUseError } from './spool.js';

const task = (lease: string) => ({ lease, jobId: 'job1', taskIndex: 0, attempt: 1 });
const text = (batch: { chunks: { text: string }[] } | undefined) =>
  (batch?.chunks ?? []).map((c) => c.text).join('');
const fresh = () => join(mkdtempSync(join(tmpdir(), 'drover-spool-test-')), 'spool');

describe('worker spool', () => {
  it('keeps log batches and results across a restart, oldest first', () => {
    const dir = fresh();
    const a = Spool.open({ dir });
    a.begin(task('L1'));
    a.begin(task('L2'));
    a.appendLog('L2', { batch: 1, chunks: [{ stream: 'stdout', text: 'two\n' }] });
    a.appendLog('L1', { batch: 1, chunks: [{ stream: 'stdout', text: 'one a\n' }] });
    a.appendLog('L1', { batch: 2, chunks: [{ stream: 'stderr', text: 'one b\n' }] });
    // A batch spooled by a worker from before batches were numbered.
    a.appendLog('L2', { chunks: [{ stream: 'stdout', text: 'old\n' }] });
    a.saveResult('L1', { lease: 'L1', outcome: 'completed', exitCode: 0 });
    a.close(); // as a crashed worker would leave it, minus the lock

    const b = Spool.open({ dir });
    expect(b.found()).toEqual([
      { task: task('L2'), result: undefined },
      { task: task('L1'), result: { lease: 'L1', outcome: 'completed', exitCode: 0 } },
    ]);
    // Each batch comes back under its number, to be sent as it was.
    expect(b.peekLog('L1')).toEqual({ batch: 1, chunks: [{ stream: 'stdout', text: 'one a\n' }] });
    b.shiftLog('L1');
    expect(b.peekLog('L1')).toEqual({ batch: 2, chunks: [{ stream: 'stderr', text: 'one b\n' }] });
    expect(b.peekLog('L2')).toEqual({ batch: 1, chunks: [{ stream: 'stdout', text: 'two\n' }] });
    b.shiftLog('L2');
    expect(b.peekLog('L2')).toEqual({ chunks: [{ stream: 'stdout', text: 'old\n' }] });
    b.remove('L1');
    b.remove('L2');
    expect(b.logBytes).toBe(0);
    b.close();
    expect(existsSync(dir)).toBe(false); // an empty spool leaves nothing behind
  });

  it('stays within its bound by dropping the oldest output behind one marker; results stay', () => {
    const dir = fresh();
    const spool = Spool.open({ dir, maxBytes: 2 * 1024 * 1024 });
    spool.begin(task('L1'));
    const kib64 = 'x'.repeat(64 * 1024 - 1) + '\n';
    for (let i = 0; i < 40; i++) {
      spool.appendLog('L1', {
        batch: i + 1,
        chunks: [{ stream: 'stdout', text: `${i}:${kib64}` }],
      });
      spool.saveResult('L1', { lease: 'L1', outcome: 'completed' });
    }
    expect(spool.logBytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(spool.droppedBytes).toBeGreaterThan(0);
    const first = spool.peekLog('L1');
    expect(text(first)).toMatch(/^\[… \d+ bytes dropped …\]\n$/);
    spool.shiftLog('L1');
    // The next batch is the oldest one kept, and the newest one is there; the marker went
    // out under the number of the last batch it stands for, so the numbers keep increasing.
    const kept: string[] = [];
    const numbers = [first!.batch!];
    while (spool.hasLog('L1')) {
      const batch = spool.peekLog('L1')!;
      kept.push(text(batch).split(':')[0]!);
      numbers.push(batch.batch!);
      spool.shiftLog('L1');
    }
    expect(kept.at(-1)).toBe('39');
    expect(numbers[1]).toBe(numbers[0]! + 1);
    expect(numbers.at(-1)).toBe(40);
    expect(kept.map(Number)).toEqual([...kept.map(Number)].sort((x, y) => x - y));
    expect(
      readdirSync(
        join(
          dir,
          readdirSync(dir).find((f) => f.startsWith('lease-'))!,
        ),
      ),
    ).toEqual(expect.arrayContaining(['result.json', 'task.json']));
    spool.close();
  });

  it('refuses a folder another live worker holds, takes over a dead one', () => {
    const dir = fresh();
    const a = Spool.open({ dir });
    expect(() => Spool.open({ dir })).toThrow(SpoolInUseError);
    a.close();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'worker.pid'), '999999999'); // no such process
    Spool.open({ dir }).close();
  });

  it('sends spooled output before newer output once the manager is back', async () => {
    const spool = Spool.open({ dir: fresh() });
    spool.begin(task('L1'));
    let up = false;
    const sent: LogAppendInput[] = [];
    const shipper = new LogShipper({
      lease: 'L1',
      send: (body) => {
        if (!up) return Promise.reject(new DroverError('unavailable', 'down'));
        sent.push(body);
        return Promise.resolve();
      },
      onLeaseLost: () => undefined,
      flushMs: 10,
      retryBaseMs: 5,
      retryMaxMs: 20,
      spool: spool.logSpool('L1'),
    });
    shipper.start();
    for (let i = 0; i < 20; i++) {
      shipper.append('stdout', `line ${i}\n`);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(spool.hasLog('L1')).toBe(true);
    up = true;
    shipper.append('stdout', 'last\n');
    const { spooled } = await shipper.close(1_000);
    // One attempt at close: what it could not send stays on disk for the agent.
    while (spool.hasLog('L1')) {
      sent.push({ lease: 'L1', ...spool.peekLog('L1')! });
      spool.shiftLog('L1');
    }
    expect(typeof spooled).toBe('boolean');
    const all = sent.flatMap((b) => b.chunks.map((c) => c.text)).join('');
    expect(all).toBe(Array.from({ length: 20 }, (_, i) => `line ${i}\n`).join('') + 'last\n');
    // Every batch with output has a number, 1, 2, … in the order sent.
    const numbers = sent.filter((b) => b.chunks.length > 0).map((b) => b.batch);
    expect(numbers).toEqual(numbers.map((_, i) => i + 1));
    spool.close();
  });
});
