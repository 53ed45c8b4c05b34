import { describe, expect, it } from 'vitest';
import { MAX_TASK_LOG_BYTES } from '../../core/worker-protocol.js';
import type { Store } from '../contract.js';
import type { TestClock } from './harness.js';
import { register, submit, withFreshStore, type OpenStore } from './harness.js';

/**
 * Conformance: failures a user must be able to see. A late report or log batch on a lost
 * lease is refused and recorded (event + a line in the lost attempt's log); an attempt's log
 * past its bound keeps its head and its current tail.
 */
export function visibilityConformance(backend: string, open: OpenStore): void {
  describe(`store conformance: ${backend}: failure visibility`, () => {
    let store: Store;
    let clock: TestClock;
    withFreshStore(open, (s, c) => {
      store = s;
      clock = c;
    });

    const logText = async (jobId: string, attempt?: number) => {
      let text = '';
      let after = 0;
      for (;;) {
        const page = await store.readTaskLog(jobId, 0, {
          after,
          ...(attempt === undefined ? {} : { attempt }),
        });
        if (page.chunks.length === 0) return text;
        for (const c of page.chunks) {
          text += c.text;
          after = c.seq;
        }
      }
    };

    /** w1 claims the job's task and goes silent; its lease expires; w2 takes the task. */
    async function loseLease() {
      await register(store, 'w1');
      await register(store, 'w2');
      const job = await submit(store, { name: 'shot' });
      const first = await store.claimTask('w1');
      await store.appendTaskLog('w1', {
        lease: first!.lease,
        chunks: [{ stream: 'system', text: 'process started\n' }],
      });
      clock.advance(11_000);
      await store.heartbeat('w2', { tasks: [] });
      expect((await store.expireLeases(60_000)).requeued).toBe(1);
      const second = await store.claimTask('w2');
      expect(second).toMatchObject({ jobId: job.id, taskIndex: 0, attempt: 2 });
      return { job, first: first!, second: second! };
    }

    it('records a refused late report as task.lease_lost and at the end of the lost attempt log', async () => {
      const { job, first } = await loseLease();
      const before = await store.listTasks(job.id, {});
      const jobBefore = await store.fetchJob(job.id);

      await expect(
        store.reportTask('w1', {
          lease: first.lease,
          outcome: 'completed',
          exitCode: 0,
          message: '',
        }),
      ).rejects.toMatchObject({ code: 'lease_lost' });

      // The refusal changed nothing else: the task is still w2's, the job's counters stand.
      expect(await store.listTasks(job.id, {})).toEqual(before);
      expect((await store.fetchJob(job.id))?.counts).toEqual(jobBefore?.counts);

      const lost = (await store.listEvents({ jobId: job.id })).filter(
        (e) => e.type === 'task.lease_lost',
      );
      expect(lost).toHaveLength(1);
      expect(lost[0]).toMatchObject({
        taskIndex: 0,
        worker: 'w1',
        data: {
          attempt: 1,
          refused: 'report',
          outcome: 'completed',
          current: { state: 'rendering', worker: 'w2', attempt: 2 },
        },
      });
      const log = await logText(job.id, 1);
      expect(log.startsWith('process started\n')).toBe(true);
      const lastLine = log.trimEnd().split('\n').pop()!;
      expect(lastLine).toMatch(/^\[lease lost: report \(completed\) from w1 refused/);
      expect(lastLine).toContain('lease expired');
      expect(lastLine).toContain('given to w2 (attempt 2');
      // The new attempt's log is its own.
      expect(await logText(job.id, 2)).toBe('');
    });

    it('records late log output once per attempt, also when reported through work()', async () => {
      const { job, first, second } = await loseLease();
      for (let i = 0; i < 3; i++) {
        await expect(
          store.appendTaskLog('w1', {
            lease: first.lease,
            chunks: [{ stream: 'stdout', text: `late ${i}\n` }],
            batch: i + 1,
          }),
        ).rejects.toMatchObject({ code: 'lease_lost' });
      }
      const r = await store.work(
        'w1',
        { lease: first.lease, outcome: 'failed', exitCode: 1, message: 'boom' },
        false,
      );
      expect(r.reportError?.code).toBe('lease_lost');
      const lost = (await store.listEvents({ jobId: job.id }))
        .filter((e) => e.type === 'task.lease_lost')
        .map((e) => e.data);
      expect(lost).toEqual([
        expect.objectContaining({ attempt: 1, refused: 'log' }),
        expect.objectContaining({ attempt: 1, refused: 'report', outcome: 'failed' }),
      ]);
      const lines = (await logText(job.id, 1)).trimEnd().split('\n');
      expect(lines.filter((l) => l.startsWith('[lease lost:'))).toHaveLength(2);
      expect(lines.some((l) => l.startsWith('late'))).toBe(false);
      // No error was counted against the job or the worker for the refused failure.
      expect((await store.fetchJob(job.id))?.errorCount).toBe(0);
      expect((await store.listTasks(job.id, {}))[0]).toMatchObject({
        state: 'rendering',
        worker: 'w2',
        attempt: second.attempt,
      });
    });

    it('writes nothing for a lease it never handed out', async () => {
      await register(store, 'w1');
      const job = await submit(store);
      const t = await store.claimTask('w1');
      const seqBefore = await store.latestEventSeq();
      // Well-formed but forged: the right job and task, an attempt this worker never ran.
      const forged = t!.lease.replace(/\.\d+$/, '.7');
      for (const lease of ['forged', forged]) {
        await expect(
          store.reportTask('w1', { lease, outcome: 'completed', exitCode: 0, message: '' }),
        ).rejects.toMatchObject({ code: 'lease_lost' });
      }
      expect(await store.latestEventSeq()).toBe(seqBefore);
      expect(await logText(job.id)).toBe('');
    });

    it("keeps an over-long attempt log's head and its current tail, with a marker between", async () => {
      await register(store, 'w1');
      const job = await submit(store);
      const t = await store.claimTask('w1');
      // Numbered lines in 60 KiB chunks, 4 chunks a call, to about 1.6× the bound.
      const lineOf = (n: number) => `line ${String(n).padStart(9, '0')} ${'.'.repeat(44)}\n`;
      const perChunk = Math.floor((60 * 1024) / lineOf(0).length);
      let n = 0;
      let written = 0;
      const send = async () => {
        const chunks = Array.from({ length: 4 }, () => {
          const text = Array.from({ length: perChunk }, () => lineOf(n++)).join('');
          written += text.length;
          return { stream: 'stdout' as const, text };
        });
        await store.appendTaskLog('w1', { lease: t!.lease, chunks });
      };
      while (written < MAX_TASK_LOG_BYTES * 1.6) await send();

      const check = async () => {
        const text = await logText(job.id);
        const lines = text.split('\n').filter(Boolean);
        const marker = lines.findIndex((l) => l.startsWith('[log trimmed:'));
        expect(marker).toBeGreaterThan(0);
        expect(lines.filter((l) => l.startsWith('[log trimmed:'))).toHaveLength(1);
        const head = lines.slice(0, marker);
        const tail = lines.slice(marker + 1);
        // The head is the start, in order; the tail is the latest output, in order, to the end.
        head.forEach((l, i) => expect(l).toBe(lineOf(i).trimEnd()));
        const lastN = n - 1;
        tail.forEach((l, i) => expect(l).toBe(lineOf(lastN - tail.length + 1 + i).trimEnd()));
        const kept = (head.length + tail.length) * lineOf(0).length;
        expect(kept).toBeLessThanOrEqual(MAX_TASK_LOG_BYTES);
        expect(kept).toBeGreaterThan(MAX_TASK_LOG_BYTES - 2 * 64 * 1024);
        expect(head.length * lineOf(0).length).toBeLessThanOrEqual(1024 * 1024);
        expect(tail.length * lineOf(0).length).toBeGreaterThan(2.9 * 1024 * 1024);
        const dropped = Number(/(\d+) bytes dropped/.exec(lines[marker]!)?.[1]);
        expect(dropped + kept).toBe(written);
      };
      await check();
      // The tail stays current as the render goes on.
      await send();
      await check();
    });
  });
}
