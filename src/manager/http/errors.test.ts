import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { insufficientStorage } from '../../core/errors.js';
import { installErrorHandler, statusOf } from './errors.js';

/** A Fastify app with the manager's error handler and a logger whose lines we can read. */
function app() {
  const lines: Array<{ level: number; msg: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        lines.push(JSON.parse(line) as { level: number; msg: string });
      }
      done();
    },
  });
  const server = Fastify({
    loggerInstance: pino({ level: 'info' }, sink),
  }) as unknown as FastifyInstance;
  installErrorHandler(server);
  server.post('/typed', () => {
    throw insufficientStorage();
  });
  // A driver error that escaped the store's own mapping (SQLite's and PostgreSQL's codes).
  server.post('/raw-sqlite', () => {
    throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
  });
  server.post('/raw-postgres', () => {
    throw Object.assign(new Error('could not extend file'), { code: '53100' });
  });
  return { server, lines };
}

describe('HTTP errors: a full disk', () => {
  it('maps insufficient_storage to 507 with a message that says nothing was changed', async () => {
    expect(statusOf.insufficient_storage).toBe(507);
    const { server } = app();
    for (const url of ['/typed', '/raw-sqlite', '/raw-postgres']) {
      const res = await server.inject({ method: 'POST', url });
      expect(res.statusCode).toBe(507);
      expect(res.json()).toMatchObject({
        error: {
          code: 'insufficient_storage',
          message: expect.stringContaining("the store's disk is full; nothing was changed"),
        },
      });
    }
    await server.close();
  });

  it('logs one clear line for a flood of refused writes, not one per request', async () => {
    const { server, lines } = app();
    for (let i = 0; i < 20; i++) await server.inject({ method: 'POST', url: '/typed' });
    const about = lines.filter((l) => /disk is full/.test(l.msg));
    expect(about).toHaveLength(1);
    expect(lines.filter((l) => l.level >= 50)).toHaveLength(1);
    await server.close();
  });
});
