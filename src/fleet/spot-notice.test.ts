import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DroverClient } from '../client/index.js';
import { startWorker } from '../worker/agent.js';
import { startFarm, until, untilJobState, type TestFarm } from '../../test/farm.js';
import { spotNoticeFromEnv, watchSpotNotice, type SpotNotice } from './spot-notice.js';

/**
 * A stand-in for EC2's instance metadata service (a fake of an external service): IMDSv2
 * session tokens, and `spot/instance-action` answering 404 until a test sets a notice.
 */
class FakeImds {
  server: Server;
  url = '';
  notice: SpotNotice | undefined;
  tokensIssued = 0;
  /** Refuse the current session once (as after its TTL). */
  expire = false;
  failWith: number | undefined;
  polls = 0;
  #token = '';

  constructor() {
    this.server = createServer((req, res) => this.#answer(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  #answer(req: IncomingMessage, res: ServerResponse): void {
    if (this.failWith) {
      res.statusCode = this.failWith;
      return void res.end();
    }
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      if (!req.headers['x-aws-ec2-metadata-token-ttl-seconds']) {
        res.statusCode = 400;
        return void res.end();
      }
      this.tokensIssued++;
      this.#token = `session-${this.tokensIssued}`;
      return void res.end(this.#token);
    }
    if (req.method === 'GET' && req.url === '/latest/meta-data/spot/instance-action') {
      this.polls++;
      if (req.headers['x-aws-ec2-metadata-token'] !== this.#token || this.expire) {
        this.expire = false;
        this.#token = '';
        res.statusCode = 401;
        return void res.end();
      }
      if (!this.notice) {
        res.statusCode = 404;
        return void res.end();
      }
      res.setHeader('content-type', 'text/plain');
      return void res.end(JSON.stringify(this.notice));
    }
    res.statusCode = 404;
    res.end();
  }
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fakeImds(): Promise<FakeImds> {
  const imds = new FakeImds();
  await imds.start();
  cleanups.push(() => imds.close());
  return imds;
}

const NOTICE = { action: 'terminate', time: '2026-12-01T18:00:00Z' };

describe('spot notice watcher', () => {
  it('reports nothing while the metadata says 404, then the notice once', async () => {
    const imds = await fakeImds();
    const seen: SpotNotice[] = [];
    const w = watchSpotNotice({
      endpoint: imds.url,
      intervalMs: 20,
      onNotice: (n) => seen.push(n),
    });
    cleanups.push(() => w.stop());
    await until('a few polls', () => imds.polls >= 3);
    expect(seen).toEqual([]);
    imds.notice = NOTICE;
    await expect(w.done).resolves.toEqual(NOTICE);
    expect(seen).toEqual([NOTICE]);
    // One IMDSv2 session served every poll.
    expect(imds.tokensIssued).toBe(1);
  });

  it('asks for a new session when the old one is refused', async () => {
    const imds = await fakeImds();
    const w = watchSpotNotice({ endpoint: imds.url, intervalMs: 20, onNotice: () => undefined });
    cleanups.push(() => w.stop());
    await until('a poll', () => imds.polls >= 1);
    imds.expire = true;
    await until('a second session', () => imds.tokensIssued >= 2);
    imds.notice = NOTICE;
    await expect(w.done).resolves.toEqual(NOTICE);
  });

  it('keeps polling through errors, reported once, and stops when told', async () => {
    const imds = await fakeImds();
    imds.failWith = 500;
    const errors: Error[] = [];
    const w = watchSpotNotice({
      endpoint: imds.url,
      intervalMs: 20,
      onNotice: () => undefined,
      onError: (e) => errors.push(e),
    });
    await until('errors to be seen', () => errors.length > 0);
    const before = errors.length;
    imds.failWith = undefined;
    await until('polls after recovery', () => imds.polls >= 2);
    expect(before).toBe(1);
    w.stop();
    await expect(w.done).resolves.toBeUndefined();
  });

  it('treats a reply that is not a notice as an error, not as a notice', async () => {
    const imds = await fakeImds();
    imds.notice = { time: 'x' } as unknown as SpotNotice;
    const seen: SpotNotice[] = [];
    const errors: Error[] = [];
    const w = watchSpotNotice({
      endpoint: imds.url,
      intervalMs: 20,
      onNotice: (n) => seen.push(n),
      onError: (e) => errors.push(e),
    });
    cleanups.push(() => w.stop());
    await until('the bad reply to be seen', () => errors.length > 0);
    expect(seen).toEqual([]);
    expect(errors[0]!.message).toMatch(/no action/);
  });

  it('is on only where the ec2 provider said so', () => {
    expect(spotNoticeFromEnv({})).toBeUndefined();
    expect(spotNoticeFromEnv({ DROVER_MACHINE_NOTICE: 'ec2' })).toEqual({});
    expect(
      spotNoticeFromEnv({
        DROVER_MACHINE_NOTICE: 'ec2',
        AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:1',
      }),
    ).toEqual({ endpoint: 'http://127.0.0.1:1' });
  });
});

describe('a worker told by EC2 that its machine is going away', () => {
  let farm: TestFarm;
  afterEach(async () => {
    await farm?.stop();
  });

  it('hands its task back as interrupted; it completes elsewhere with no error counted', async () => {
    farm = await startFarm();
    const imds = await fakeImds();
    const spot = startWorker({
      client: new DroverClient({
        url: farm.manager.url,
        token: farm.workerToken,
      }),
      name: 'spot-1',
      spotNotice: { endpoint: imds.url, intervalMs: 50 },
      heartbeatIntervalMs: 300,
      spoolDir: false,
      logger: pino({ level: 'silent' }),
    });
    cleanups.push(async () => {
      spot.stopNow();
      await spot.done;
    });
    const job = await farm.client.submitJob({
      plugin: 'CommandLine',
      frames: '1',
      name: 'interrupted by spot',
      pluginInfo: {
        executable: process.execPath,
        arguments: ['-e', 'setTimeout(() => {}, 3000)'],
      },
    });
    await until('the spot worker to render the task', async () => {
      const [t] = await farm.client.listTasks(job.id);
      return t?.state === 'rendering' && t.worker === 'spot-1';
    });
    imds.notice = NOTICE;
    // The worker stops; the task is queued again at once, with no error counted.
    await spot.done;
    const [task] = await farm.client.listTasks(job.id);
    expect(task!.state).toBe('queued');
    expect(task!.errorCount).toBe(0);
    const events = await farm.client.listEvents({ job: job.id });
    expect(events.map((e) => e.type)).toContain('task.interrupted');

    farm.startWorker('on-demand-1');
    const done = await untilJobState(farm.client, job.id, ['completed', 'failed']);
    expect(done.state).toBe('completed');
    expect(done.errorCount).toBe(0);
    const [finished] = await farm.client.listTasks(job.id);
    expect(finished!.worker).toBe('on-demand-1');
  });
});
