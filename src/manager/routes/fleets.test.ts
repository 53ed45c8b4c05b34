import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { fleetView, fleetListReply } from '../../api/replies.js';
import { LocalProvider } from '../../fleet/providers/local.js';
import type { Store } from '../../store/contract.js';
import { openSqliteStore } from '../../store/sqlite/index.js';
import { buildApp } from '../app.js';
import { defaultManagerSettings } from '../config.js';
import { Farm } from '../farm.js';

const quiet = pino({ level: 'silent' });

describe('fleet routes', () => {
  let app: FastifyInstance;
  let store: Store;

  beforeEach(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-fleets-api-'));
    store = await openSqliteStore(join(dir, 'drover.db'));
    const farm = new Farm(store, defaultManagerSettings, quiet);
    farm.fleets.addProvider(new LocalProvider({ data: dir }));
    app = buildApp(farm, quiet, { auth: 'none' });
    await app.ready();
  });
  afterEach(async () => {
    await app.close();
    await store.close();
  });

  const req = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
    app.inject({ method, url: `/api/v1${url}`, ...(payload ? { payload } : {}) });
  const fleet = { name: 'gpu-west', provider: 'local', region: 'us-west-2', max: 4 };

  it('creates, shows, changes and deletes a fleet', async () => {
    const created = await req('POST', '/fleets', { ...fleet, pools: ['gpu'], costPerHour: 0.9 });
    expect(created.statusCode).toBe(201);
    const body = created.json();
    expect(fleetView.parse(body.fleet)).toMatchObject({
      name: 'gpu-west',
      pools: ['gpu'],
      min: 0,
      idleShutdownS: 300,
      settings: { maxMachines: 16 },
      status: { running: 0, decision: null, costHours: 0 },
    });
    const list = fleetListReply.parse((await req('GET', '/fleets')).json());
    expect(list.fleets.map((f) => f.name)).toEqual(['gpu-west']);
    const changed = await req('PATCH', '/fleets/gpu-west', { max: 8, costPerHour: null });
    expect(changed.statusCode).toBe(200);
    expect(changed.json().fleet.max).toBe(8);
    expect(changed.json().fleet.costPerHour).toBeUndefined();
    const shown = await req('GET', '/fleets/gpu-west');
    expect(shown.json()).toMatchObject({ fleet: { max: 8 }, machines: [] });
    expect((await req('GET', '/fleets/gpu-west/history')).json()).toEqual({ decisions: [] });
    // The scaler's token for the fleet's machines goes with it; others stay.
    const own = await store.createToken({
      name: 'fleet-gpu-west-abc',
      role: 'worker',
      hash: 'h1',
      workers: 'gpu-west-local-*',
    });
    // Made by an earlier version, scoped to the whole name prefix.
    const older = await store.createToken({
      name: 'fleet-gpu-west-def',
      role: 'worker',
      hash: 'h3',
      workers: 'gpu-west-*',
    });
    const other = await store.createToken({
      name: 'render-farm',
      role: 'worker',
      hash: 'h2',
      workers: 'gpu-west-*',
    });
    expect((await req('DELETE', '/fleets/gpu-west')).statusCode).toBe(200);
    const tokens = await store.listTokens();
    expect(tokens.find((t) => t.id === own.id)!.revokedAt).not.toBeNull();
    expect(tokens.find((t) => t.id === older.id)!.revokedAt).not.toBeNull();
    expect(tokens.find((t) => t.id === other.id)!.revokedAt).toBeNull();
    expect((await req('GET', '/fleets/gpu-west')).statusCode).toBe(404);
  });

  it('refuses bad definitions naming the field, and changes nothing', async () => {
    const cases: Array<[object, string]> = [
      [{ ...fleet, min: 5, max: 2 }, 'min'],
      [{ ...fleet, max: 5000 }, 'max'],
      [{ ...fleet, name: 'Has Spaces' }, 'name'],
      [{ ...fleet, provider: 'nimbus' }, 'provider'],
      [{ ...fleet, settings: { maxMachines: 0 } }, 'settings.maxMachines'],
      [{ ...fleet, settings: { secretKey: 'x' } }, 'settings.secretKey'],
      [{ ...fleet, costCapPerHour: 3 }, 'costCapPerHour'],
      [{ ...fleet, idleShutdownS: 0 }, 'idleShutdownS'],
      [{ ...fleet, extra: 1 }, 'extra'],
    ];
    for (const [body, field] of cases) {
      const r = await req('POST', '/fleets', body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error.field, JSON.stringify(body)).toBe(field);
    }
    expect(await store.fleets.listFleets()).toEqual([]);
    await req('POST', '/fleets', fleet);
    const bad = await req('PATCH', '/fleets/gpu-west', { min: 9 });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.field).toBe('min');
    expect((await store.fleets.fetchFleet('gpu-west'))!.min).toBe(0);
    expect((await req('POST', '/fleets', fleet)).statusCode).toBe(409);
  });
});
