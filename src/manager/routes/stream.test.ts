import { get, type IncomingMessage } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Store } from '../../store/contract.js';
import { openSqliteStore } from '../../store/sqlite/index.js';
import { buildApp } from '../app.js';
import { Authenticator, CACHE_MS, ensureAdminToken } from '../auth.js';
import { defaultManagerSettings } from '../config.js';
import { Farm } from '../farm.js';
import { MAX_STREAMS_PER_TOKEN } from './stream.js';

const quiet = pino({ level: 'silent' });

/** Opens the event stream; resolves once the status line is in. */
function openStream(base: string, token: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = get(`${base}/api/v1/events/stream`, {
      headers: { authorization: `Bearer ${token}` },
    });
    req.on('response', resolve);
    req.on('error', reject);
  });
}

function ended(res: IncomingMessage): Promise<string> {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (d: string) => (text += d));
  return new Promise((resolve) => res.on('close', () => resolve(text)));
}

describe('the live event stream and its tokens', () => {
  let app: FastifyInstance;
  let store: Store;
  let auth: Authenticator;
  let base: string;
  let admin: string;
  const open: IncomingMessage[] = [];

  beforeEach(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-stream-'));
    store = await openSqliteStore(join(dir, 'drover.db'));
    auth = new Authenticator(store);
    admin = (await ensureAdminToken(store, auth, dir))!;
    app = buildApp(new Farm(store, defaultManagerSettings, quiet), quiet, { auth });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterEach(async () => {
    for (const res of open.splice(0)) res.destroy();
    await app.close();
    await store.close();
  });

  it('ends an open stream once its token is revoked', async () => {
    const { secret, info } = await auth.createToken('viewer', 'read-only');
    const res = await openStream(base, secret);
    open.push(res);
    expect(res.statusCode).toBe(200);
    const closed = ended(res);
    const revokedAt = Date.now();
    await auth.revoke(info.id);
    const text = await closed;
    expect(text).toContain('event: revoked');
    // Within the token cache's time plus one re-check round (and slack for a busy machine).
    expect(Date.now() - revokedAt).toBeLessThan(CACHE_MS + 5_000);
    // And it cannot come back.
    const again = await openStream(base, secret);
    open.push(again);
    expect(again.statusCode).toBe(401);
  });

  it('caps the streams one token may hold, so the admin can still open one', async () => {
    const { secret } = await auth.createToken('viewer', 'read-only');
    for (let i = 0; i < MAX_STREAMS_PER_TOKEN; i++) {
      const res = await openStream(base, secret);
      open.push(res);
      expect(res.statusCode).toBe(200);
    }
    const over = await openStream(base, secret);
    open.push(over);
    expect(over.statusCode).toBe(503);
    const mine = await openStream(base, admin);
    open.push(mine);
    expect(mine.statusCode).toBe(200);
  });
});
