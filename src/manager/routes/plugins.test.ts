import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { PluginHost } from '../../events/host.js';
import { gfsSyncPlugin } from '../../events/plugins/gfs-sync/index.js';
import type { Store } from '../../store/contract.js';
import { openSqliteStore } from '../../store/sqlite/index.js';
import { buildApp } from '../app.js';
import { defaultManagerSettings } from '../config.js';
import { Farm } from '../farm.js';

const quiet = pino({ level: 'silent' });

describe('plugin and path-mapping routes', () => {
  let app: FastifyInstance;
  let store: Store;
  let host: PluginHost;

  beforeEach(async () => {
    store = await openSqliteStore(
      join(mkdtempSync(join(tmpdir(), 'drover-plugins-api-')), 'drover.db'),
    );
    const farm = new Farm(store, defaultManagerSettings, quiet);
    host = new PluginHost({ store, plugins: [gfsSyncPlugin], log: quiet });
    await host.start();
    farm.plugins = host;
    app = buildApp(farm, quiet, { auth: 'none' });
    await app.ready();
  });
  afterEach(async () => {
    await app.close();
    await host.stop();
    await store.close();
  });

  const req = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
    app.inject({ method, url: `/api/v1${url}`, ...(payload ? { payload } : {}) });

  it('lists plugins with their schema and configures them', async () => {
    const list = (await req('GET', '/plugins')).json();
    expect(list.plugins[0]).toMatchObject({
      name: 'gfs-sync',
      state: 'disabled',
      handlers: ['onJobSubmitted', 'onJobFinished'],
    });
    expect((list.plugins[0].schema as Array<{ key: string }>).map((e) => e.key)).toContain(
      'iterationCount',
    );
    const set = await req('PATCH', '/plugins/gfs-sync', {
      state: 'global',
      config: { iterationCount: 5 },
    });
    expect(set.statusCode).toBe(200);
    expect(set.json().plugin).toMatchObject({ state: 'global', config: { iterationCount: 5 } });
  });

  it('refuses bad plugin settings naming the field, and keeps the old ones', async () => {
    const tooMany = await req('PATCH', '/plugins/gfs-sync', { config: { iterationCount: 501 } });
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json().error).toMatchObject({ field: 'config.iterationCount' });
    const badState = await req('PATCH', '/plugins/gfs-sync', { state: 'on' });
    expect(badState.statusCode).toBe(400);
    expect(badState.json().error.field).toBe('state');
    const badEnum = await req('PATCH', '/plugins/gfs-sync', { config: { gfs: 'nfs' } });
    expect(badEnum.json().error.field).toBe('config.gfs');
    expect((await req('GET', '/plugins/gfs-sync')).json().plugin.config.iterationCount).toBe(20);
    expect((await req('GET', '/plugins/nope')).statusCode).toBe(404);
  });

  it('adds, lists, applies and removes path mapping rules', async () => {
    const added = await req('POST', '/paths', {
      prefix: '/gfs/',
      replacement: '/mnt/london/',
      region: 'eu-west-2',
    });
    expect(added.statusCode).toBe(201);
    const id = added.json().rule.id;
    expect((await req('GET', '/paths')).json().rules).toHaveLength(1);
    const mapped = await req('POST', '/paths/map', { path: '/gfs/show/a', region: 'eu-west-2' });
    expect(mapped.json().path).toBe('/mnt/london/show/a');
    expect(
      (await req('POST', '/paths/map', { path: '/gfs/show/a', region: 'us-west-2' })).json().path,
    ).toBe('/gfs/show/a');
    expect((await req('DELETE', `/paths/${id}`)).statusCode).toBe(200);
    expect((await req('DELETE', `/paths/${id}`)).statusCode).toBe(404);
    const bad = await req('POST', '/paths', { prefix: '', replacement: '/x' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.field).toBe('prefix');
    expect(
      (await req('POST', '/paths', { prefix: '/a', replacement: '/b', os: 'beos' })).json().error
        .field,
    ).toBe('os');
  });
});
