import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { openSqliteStore } from '../store/sqlite/index.js';
import type { Store } from '../store/contract.js';
import { buildApp } from './app.js';
import { defaultManagerSettings } from './config.js';
import { Farm } from './farm.js';

const quiet = pino({ level: 'silent' });
const registration = {
  name: 'w1',
  region: 'us-west-2',
  capabilities: { cpus: 2, memoryMb: 1024, os: 'linux' },
};

describe('HTTP API (in process)', () => {
  let app: FastifyInstance;
  let store: Store;

  beforeEach(async () => {
    store = await openSqliteStore(join(mkdtempSync(join(tmpdir(), 'drover-api-')), 'drover.db'));
    app = buildApp(new Farm(store, defaultManagerSettings, quiet), quiet, { auth: 'none' });
    await app.ready();
  });
  afterEach(async () => {
    await app.close();
    await store.close();
  });

  const post = (url: string, payload: unknown) =>
    app.inject({ method: 'POST', url: `/api/v1${url}`, payload: payload as object });
  const get = (url: string) => app.inject({ method: 'GET', url: `/api/v1${url}` });
  const good = {
    name: 'shot010',
    plugin: 'CommandLine',
    pluginInfo: { executable: '/bin/echo', arguments: ['{start}'] },
    frames: '1-10',
    chunkSize: 2,
    outputDirectories: ['/gfs/show/shot010/'],
  };

  it('accepts a job and answers with it, defaults applied', async () => {
    const res = await post('/jobs', good);
    expect(res.statusCode).toBe(201);
    const { job } = res.json();
    expect(job).toMatchObject({
      name: 'shot010',
      taskCount: 5,
      priority: 50,
      state: 'queued',
      outputDirectories: ['/gfs/show/shot010'],
    });
    expect((await get(`/jobs/${job.id}`)).json().job.id).toBe(job.id);
    expect((await get(`/jobs/${job.id}/tasks`)).json().tasks).toHaveLength(5);
  });

  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['no plugin', { frames: '1' }, 'plugin'],
    ['a plugin name with a space', { plugin: 'Maya 2099' }, 'plugin'],
    ['a bad frame list', { frames: '1-x' }, 'frames'],
    ['too many frames', { frames: '1-1000001' }, 'frames'],
    ['priority out of range', { priority: 101 }, 'priority'],
    ['a relative output directory', { outputDirectories: ['renders/out'] }, 'outputDirectories.0'],
    ['a climbing output directory', { outputDirectories: ['/gfs/../etc'] }, 'outputDirectories.0'],
    ['an unknown field', { colour: 'blue' }, 'colour'],
    ['a bad plugin setting', { pluginInfo: { executable: 5 } }, 'pluginInfo.executable'],
    ['a chunk size of 0', { chunkSize: 0 }, 'chunkSize'],
    ['a string for a number', { priority: 'high' }, 'priority'],
  ];
  for (const [what, change, field] of bad) {
    it(`refuses ${what} with 400 naming ${field}, and stores nothing`, async () => {
      const res = await post('/jobs', {
        ...good,
        ...change,
        ...(what === 'no plugin' ? { plugin: undefined } : {}),
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'invalid_input', field });
      expect((await get('/jobs')).json().jobs).toEqual([]);
      expect((await get('/events')).json().events).toEqual([]);
    });
  }

  it('refuses malformed JSON and oversized bodies', async () => {
    const malformed = await app.inject({
      method: 'POST',
      url: '/api/v1/jobs',
      payload: '{"name":',
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe('invalid_input');
    const huge = await post('/jobs', { ...good, comment: 'x'.repeat(3 * 1024 * 1024) });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.code).toBe('too_large');
  });

  it('answers 404 with a JSON error for unknown jobs and routes', async () => {
    expect((await get('/jobs/0123')).statusCode).toBe(404);
    const res = await get('/nope');
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('not_found');
  });

  it('runs the worker protocol: register, claim, log, complete in the next claim', async () => {
    expect((await post('/workers/register', registration)).statusCode).toBe(200);
    const { job } = (await post('/jobs', { ...good, frames: '1-2', chunkSize: 1 })).json();
    const first = (await post('/workers/w1/work', {})).json();
    expect(first.task).toMatchObject({
      jobId: job.id,
      taskIndex: 0,
      frames: [1],
      plugin: 'CommandLine',
    });
    const lease = first.task.lease;
    expect(
      (
        await post('/workers/w1/logs', {
          lease,
          chunks: [{ stream: 'stdout', text: 'hi\n' }],
          progress: 50,
        })
      ).statusCode,
    ).toBe(200);
    const second = (
      await post('/workers/w1/work', { report: { lease, outcome: 'completed', exitCode: 0 } })
    ).json();
    expect(second.reportError).toBeNull();
    expect(second.task.taskIndex).toBe(1);
    const again = (
      await post('/workers/w1/work', { report: { lease, outcome: 'completed' }, claim: false })
    ).json();
    expect(again.reportError.code).toBe('lease_lost');
    const log = (await get(`/jobs/${job.id}/tasks/0/log`)).json<{
      chunks: Array<{ text: string }>;
    }>();
    // The refused report is recorded at the end of the attempt's log.
    expect(log.chunks.map((c) => c.text)[0]).toBe('hi\n');
    expect(log.chunks).toHaveLength(2);
    expect(log.chunks[1]!.text).toMatch(/lease/i);
    const logs = await post('/workers/w1/logs', {
      lease,
      chunks: [{ stream: 'stdout', text: 'late' }],
    });
    expect(logs.statusCode).toBe(409);
    expect(logs.json().error.code).toBe('lease_lost');
  });

  it('long-polls a claim until work is submitted', async () => {
    await post('/workers/register', registration);
    const waiting = post('/workers/w1/work', { waitMs: 5000 });
    await new Promise((r) => setTimeout(r, 100));
    const { job } = (await post('/jobs', good)).json();
    const res = await waiting;
    expect(res.json().task.jobId).toBe(job.id);
  });

  it('applies job actions and refuses ones that do not fit', async () => {
    const { job } = (await post('/jobs', good)).json();
    const suspended = await post(`/jobs/${job.id}/actions`, { action: 'suspend' });
    expect(suspended.json().job.state).toBe('suspended');
    const again = await post(`/jobs/${job.id}/actions`, { action: 'suspend' });
    expect(again.statusCode).toBe(409);
    const bogus = await post(`/jobs/${job.id}/actions`, { action: 'explode' });
    expect(bogus.statusCode).toBe(400);
    expect(bogus.json().error.field).toBe('action');
  });
});
