import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { Store } from '../../store/contract.js';
import { openSqliteStore } from '../../store/sqlite/index.js';
import { buildApp } from '../app.js';
import { defaultManagerSettings } from '../config.js';
import { Farm } from '../farm.js';

const quiet = pino({ level: 'silent' });

/** A folder holding one "frame" (the route looks at names and sizes, not pixels). */
function frameFolder(parent: string, name: string): string {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'frame_0001.png'), 'not really a png');
  return dir;
}

describe('output images and output roots', () => {
  let store: Store;
  let root: string;
  let outside: string;
  const apps: FastifyInstance[] = [];

  beforeEach(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-outputs-'));
    root = join(dir, 'renders');
    outside = join(dir, 'elsewhere');
    store = await openSqliteStore(join(dir, 'drover.db'));
  });
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    await store.close();
  });

  async function appWith(outputRoots?: string[]): Promise<FastifyInstance> {
    const farm = new Farm(store, defaultManagerSettings, quiet);
    const app = buildApp(farm, quiet, { auth: 'none', ...(outputRoots ? { outputRoots } : {}) });
    apps.push(app);
    await app.ready();
    return app;
  }

  async function jobFor(app: FastifyInstance, outputDirectory: string): Promise<string> {
    const r = await app.inject({
      method: 'POST',
      url: '/api/v1/jobs',
      payload: {
        plugin: 'CommandLine',
        pluginInfo: { executable: '/bin/true' },
        frames: '1',
        outputDirectories: [outputDirectory],
      },
    });
    expect(r.statusCode).toBe(201);
    return r.json<{ job: { id: string } }>().job.id;
  }

  it('serves images only from output folders inside an output root', async () => {
    const app = await appWith([root]);
    const inRoot = await jobFor(app, frameFolder(root, 'sh010'));
    const latest = await app.inject(`/api/v1/jobs/${inRoot}/outputs/latest`);
    expect(latest.json().image).toMatchObject({ directory: 0, name: 'frame_0001.png' });
    const image = await app.inject(`/api/v1/jobs/${inRoot}/outputs/0/frame_0001.png`);
    expect(image.statusCode).toBe(200);
    expect(image.body).toBe('not really a png');

    // Any submitter names output folders: one outside the roots shows nothing.
    const away = await jobFor(app, frameFolder(outside, 'secrets'));
    expect((await app.inject(`/api/v1/jobs/${away}/outputs/latest`)).json().image).toBeNull();
    expect((await app.inject(`/api/v1/jobs/${away}/outputs/0/frame_0001.png`)).statusCode).toBe(
      404,
    );

    // Nor does a link inside a root that leads out of it.
    symlinkSync(frameFolder(outside, 'linked'), join(root, 'link'));
    const linked = await jobFor(app, join(root, 'link'));
    expect((await app.inject(`/api/v1/jobs/${linked}/outputs/latest`)).json().image).toBeNull();
    expect((await app.inject(`/api/v1/jobs/${linked}/outputs/0/frame_0001.png`)).statusCode).toBe(
      404,
    );
  });

  it('serves no images at all without output roots, and says so', async () => {
    const app = await appWith();
    const id = await jobFor(app, frameFolder(root, 'sh020'));
    expect((await app.inject(`/api/v1/jobs/${id}/outputs/latest`)).json().image).toBeNull();
    const r = await app.inject(`/api/v1/jobs/${id}/outputs/0/frame_0001.png`);
    expect(r.statusCode).toBe(404);
    expect(r.json().error.message).toContain('--output-root');
  });
});
