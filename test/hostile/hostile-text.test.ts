import fc from 'fast-check';
import { expect, it } from 'vitest';
import { onEachStore, type Answer, type ErrorBody, type HostileFarm } from './hostile-farm.js';
import { encodeSegment, tainted, taintLeaf } from './hostile-text.js';

/**
 * Text no store takes back — NUL, lone surrogates — and ids no route takes (percent-encoded
 * NUL, bad encodings, over-long ids), in every path parameter, query parameter and named
 * body field: a 400 naming the field at fault, on SQLite and on PostgreSQL (where a NUL
 * reaching the driver was a 500), and the store unchanged (`hostile-farm.ts` checks it).
 */

/** What a refusal must say: status 400, `invalid_input`, and one of these fields. */
function expectRefused(res: Answer, fields: readonly string[], where: string): void {
  expect(res.statusCode, `${where} → ${res.body.slice(0, 300)}`).toBe(400);
  const { error } = res.json<ErrorBody>();
  expect(error.code, where).toBe('invalid_input');
  expect(fields, `${where}: names ${JSON.stringify(error.field)}`).toContain(error.field);
}

// ── path parameters ──

interface PathRoute {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** The target with `seg` as the parameter under test. */
  url: (seg: string, jobId: string) => string;
  param: 'id' | 'name';
  /** The longest value the parameter takes; `number` for numeric ids. */
  max: number | 'number';
  /** A body that is valid, so only the parameter can be at fault. */
  body?: unknown;
}

const pathRoutes: PathRoute[] = [
  { method: 'GET', url: (s) => `/api/v1/jobs/${s}`, param: 'id', max: 64 },
  { method: 'PATCH', url: (s) => `/api/v1/jobs/${s}`, param: 'id', max: 64, body: { priority: 1 } },
  {
    method: 'POST',
    url: (s) => `/api/v1/jobs/${s}/actions`,
    param: 'id',
    max: 64,
    body: { action: 'suspend' },
  },
  { method: 'GET', url: (s) => `/api/v1/jobs/${s}/tasks`, param: 'id', max: 64 },
  {
    method: 'POST',
    url: (s) => `/api/v1/jobs/${s}/tasks/requeue`,
    param: 'id',
    max: 64,
    body: { tasks: [0] },
  },
  { method: 'GET', url: (s) => `/api/v1/jobs/${s}/tasks/0/log`, param: 'id', max: 64 },
  { method: 'GET', url: (s) => `/api/v1/jobs/${s}/outputs/latest`, param: 'id', max: 64 },
  { method: 'GET', url: (s) => `/api/v1/jobs/${s}/outputs/0/a.png`, param: 'id', max: 64 },
  { method: 'GET', url: (s, job) => `/api/v1/jobs/${job}/outputs/0/${s}`, param: 'name', max: 255 },
  { method: 'GET', url: (s) => `/api/v1/workers/${s}`, param: 'name', max: 128 },
  {
    method: 'PATCH',
    url: (s) => `/api/v1/workers/${s}`,
    param: 'name',
    max: 128,
    body: { enabled: true },
  },
  {
    method: 'POST',
    url: (s) => `/api/v1/workers/${s}/heartbeat`,
    param: 'name',
    max: 128,
    body: { tasks: [] },
  },
  {
    method: 'POST',
    url: (s) => `/api/v1/workers/${s}/work`,
    param: 'name',
    max: 128,
    body: { waitMs: 0, claim: false },
  },
  {
    method: 'POST',
    url: (s) => `/api/v1/workers/${s}/logs`,
    param: 'name',
    max: 128,
    body: { lease: 'x', chunks: [] },
  },
  {
    method: 'POST',
    url: (s) => `/api/v1/workers/${s}/report`,
    param: 'name',
    max: 128,
    body: { lease: 'x', outcome: 'completed' },
  },
  { method: 'POST', url: (s) => `/api/v1/workers/${s}/stopped`, param: 'name', max: 128, body: {} },
  { method: 'PUT', url: (s) => `/api/v1/limits/${s}`, param: 'name', max: 128, body: { max: 2 } },
  { method: 'GET', url: (s) => `/api/v1/plugins/${s}`, param: 'name', max: 128 },
  {
    method: 'PATCH',
    url: (s) => `/api/v1/plugins/${s}`,
    param: 'name',
    max: 128,
    body: { state: 'Disabled' },
  },
  { method: 'DELETE', url: (s) => `/api/v1/paths/${s}`, param: 'id', max: 'number' },
  { method: 'DELETE', url: (s) => `/api/v1/tokens/${s}`, param: 'id', max: 64 },
];

/**
 * Over-long ids of hex digits, past the router's old limit of 100 and up to a few
 * kilobytes (the length shrinks first, so a failure names the shortest one).
 */
const overLong = (min: number) =>
  fc
    .tuple(fc.integer({ min, max: 5000 }), fc.integer({ min: 0, max: 0xffff }))
    .map(([n, seed]) =>
      Array.from({ length: n }, (_, i) => ((seed * 31 + i * 7) % 16).toString(16)).join(''),
    );

const ascii = fc.string({ unit: 'grapheme-ascii', maxLength: 12 });
/** A segment that contains an encoded NUL (or a lone surrogate's bytes) in a plain id. */
const nulSegment = tainted.map(encodeSegment);
/** Encodings no decoder takes: refused as the URL (or as the parameter, once decoded). */
const badEncoding = fc.constantFrom('%ZZ', 'a%', 'a%0', '%ED%A0%80', '%C0%AE', 'x%FFy');

/**
 * Whether the manager refuses `seg` as the URL before any route sees it: a dot segment or a
 * backslash once decoded (see `checkTarget` in `serve.ts`), or bytes that are not UTF-8.
 */
function refusedAsUrl(seg: string): boolean {
  let decoded: string;
  try {
    decoded = decodeURIComponent(seg);
  } catch {
    return true;
  }
  return decoded.includes('\\') || /(^|\/)\.{1,2}(\/|$)/.test(decoded);
}

async function sendPath(f: HostileFarm, r: PathRoute, seg: string): Promise<Answer> {
  return f.send(
    r.method,
    r.url(seg, f.jobId),
    r.body === undefined ? undefined : JSON.stringify(r.body),
    'application/json',
    'http',
  );
}

/** A GET over real HTTP, its target as written (see `overHttp`). */
function get(f: HostileFarm, target: string): Promise<Answer> {
  return f.send('GET', target, undefined, undefined, 'http');
}

// ── query parameters ──

interface QueryCase {
  /** The target with `value` as the query parameter under test. */
  url: (value: string, jobId: string) => string;
  field: string;
  /**
   * The live stream opens (and stays open) once its query is valid, so only values that are
   * always refused are sent to it: those with a NUL.
   */
  nulOnly?: true;
  /** The longest text the parameter takes; `number` for numeric ones. */
  max: number | 'number';
}

const queryCases: QueryCase[] = [
  { url: (v) => `/api/v1/events?job=${v}`, field: 'job', max: 64 },
  { url: (v) => `/api/v1/events?type=${v}`, field: 'type', max: 1000 },
  { url: (v) => `/api/v1/events?after=${v}`, field: 'after', max: 'number' },
  { url: (v) => `/api/v1/events/stream?after=${v}`, field: 'after', max: 'number', nulOnly: true },
  { url: (v) => `/api/v1/events/stream?token=${v}`, field: 'token', max: 200, nulOnly: true },
  { url: (v) => `/api/v1/jobs?user=${v}`, field: 'user', max: 128 },
  { url: (v) => `/api/v1/jobs?state=${v}`, field: 'state', max: 200 },
  { url: (v) => `/api/v1/jobs?limit=${v}`, field: 'limit', max: 'number' },
  { url: (v, job) => `/api/v1/jobs/${job}/tasks?offset=${v}`, field: 'offset', max: 'number' },
  {
    url: (v, job) => `/api/v1/jobs/${job}/tasks/0/log?attempt=${v}`,
    field: 'attempt',
    max: 'number',
  },
  { url: (v, job) => `/api/v1/jobs/${job}/outputs/latest?token=${v}`, field: 'token', max: 200 },
];

// ── named fields in bodies ──

interface BodyRoute {
  method: 'POST' | 'PATCH' | 'PUT';
  url: (jobId: string) => string;
  /** A valid body holding every text field the route names. */
  valid: Record<string, unknown>;
}

const bodyRoutes: BodyRoute[] = [
  {
    method: 'POST',
    url: () => '/api/v1/jobs',
    valid: {
      name: 'shot 010',
      batchName: 'seq010',
      user: 'alice',
      machineName: 'ws1',
      department: 'lighting',
      comment: 'first pass',
      plugin: 'CommandLine',
      pluginInfo: { executable: '/bin/true', arguments: ['-v', 'x'], workingDirectory: '/tmp' },
      frames: '1-3',
      pool: 'gpu',
      secondaryPool: 'cpu',
      group: 'linux',
      allowList: ['w1'],
      denyList: ['w9'],
      limits: ['nuke'],
      regions: ['eu'],
      outputDirectories: ['/gfs/out'],
      outputFilenames: ['a.####.exr'],
      extraInfo: { shot: 'sh010' },
      environment: { OCIO: '/gfs/ocio.config' },
      eventOptIns: ['gfs-sync'],
    },
  },
  {
    method: 'PATCH',
    url: (job) => `/api/v1/jobs/${job}`,
    valid: {
      name: 'shot 010',
      batchName: 'seq010',
      comment: 'second pass',
      pool: 'gpu',
      secondaryPool: 'cpu',
      group: 'linux',
      limits: ['nuke'],
      allowList: ['w1'],
      denyList: ['w9'],
      regions: ['eu'],
    },
  },
  {
    method: 'POST',
    url: () => '/api/v1/workers/register',
    valid: {
      name: 'w2',
      region: 'eu',
      pools: ['gpu'],
      groups: ['linux'],
      capabilities: { cpus: 1, memoryMb: 1, os: 'linux' },
      version: '1.0',
    },
  },
  {
    method: 'POST',
    url: () => '/api/v1/tokens',
    valid: { name: 'render-w', role: 'worker', workers: 'w-*' },
  },
  {
    method: 'PATCH',
    url: () => '/api/v1/plugins/gfs-sync',
    valid: { config: { gfsRoot: '/gfs', region: 'eu', group: 'none' } },
  },
  {
    method: 'POST',
    url: () => '/api/v1/paths',
    valid: { prefix: '/gfs/', replacement: '/mnt/gfs/', region: 'eu' },
  },
  { method: 'POST', url: () => '/api/v1/paths/map', valid: { path: '/gfs/a', region: 'eu' } },
  {
    method: 'POST',
    url: () => '/api/v1/workers/w1/heartbeat',
    valid: { tasks: [{ lease: 'l1', status: 'rendering' }] },
  },
  {
    method: 'POST',
    url: () => '/api/v1/workers/w1/report',
    valid: { lease: 'l1', outcome: 'failed', message: 'boom' },
  },
  {
    method: 'POST',
    url: () => '/api/v1/workers/w1/work',
    valid: { report: { lease: 'l1', outcome: 'failed', message: 'boom' }, claim: false },
  },
  {
    method: 'POST',
    url: () => '/api/v1/workers/w1/logs',
    valid: { lease: 'l1', chunks: [{ stream: 'stdout', text: 'hi' }] },
  },
];

/**
 * Fields of task output (log text, status lines, failure messages): a process may print a
 * NUL, so these keep the text with U+FFFD instead of refusing it (see `outputText` in
 * `worker-protocol.ts`). Tainting them is not a refusal.
 */
const outputFields = /(^|\.)(status|message|text)$/;

await onEachStore('hostile text', (farm, runs) => {
  it('GET /api/v1/jobs/<101 hex characters> → 400 naming id (not 404 "no route")', async () => {
    const f = farm();
    const res = await get(f, `/api/v1/jobs/${'a'.repeat(101)}`);
    expectRefused(res, ['id'], 'GET /api/v1/jobs/<101 × a>');
  });

  it('GET /api/v1/jobs/<5000 hex characters> → 400 naming id (not 404 or 414)', async () => {
    const res = await get(farm(), `/api/v1/jobs/${'b'.repeat(5000)}`);
    expectRefused(res, ['id'], 'GET /api/v1/jobs/<5000 × b>');
  });

  it('GET /api/v1/jobs/a%00b → 400 naming id', async () => {
    const res = await get(farm(), '/api/v1/jobs/a%00b');
    expectRefused(res, ['id'], 'GET /api/v1/jobs/a%00b');
    expect(res.json<ErrorBody>().error.message).toMatch(/NUL/);
  });

  it('GET /api/v1/events?job=a%00b and /api/v1/jobs?user=%00 → 400 naming the parameter', async () => {
    const f = farm();
    expectRefused(await get(f, '/api/v1/events?job=a%00b'), ['job'], '?job=a%00b');
    expectRefused(await get(f, '/api/v1/jobs?user=%00'), ['user'], '?user=%00');
  });

  it('a NUL or lone surrogate in any path parameter is refused naming it', async () => {
    const f = farm();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...pathRoutes), nulSegment, async (r, seg) => {
        const res = await sendPath(f, r, seg);
        // A surrogate's bytes are not UTF-8: refused while decoding the URL, or as the value.
        expectRefused(res, [r.param, 'url'], `${r.method} ${r.url(seg, ':job')}`);
        if (seg.includes('%00') && !refusedAsUrl(seg)) {
          expect(res.json<ErrorBody>().error.field).toBe(r.param);
        }
      }),
      { numRuns: runs },
    );
  });

  it('an over-long id or name in any path parameter is refused naming it', async () => {
    const f = farm();
    const cases = fc
      .constantFrom(...pathRoutes)
      .chain((r) =>
        fc.tuple(fc.constant(r), overLong(r.max === 'number' ? 101 : Math.max(101, r.max + 1))),
      );
    await fc.assert(
      fc.asyncProperty(cases, async ([r, seg]) => {
        expectRefused(
          await sendPath(f, r, seg),
          [r.param],
          `${r.method} ${r.url(`<${seg.length} hex>`, ':job')}`,
        );
      }),
      { numRuns: runs },
    );
  });

  it('a path parameter no decoder takes is refused as the URL or the parameter', async () => {
    const f = farm();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...pathRoutes), badEncoding, async (r, seg) => {
        expectRefused(
          await sendPath(f, r, seg),
          [r.param, 'url'],
          `${r.method} ${r.url(seg, ':job')}`,
        );
      }),
      { numRuns: Math.min(runs, pathRoutes.length * 6) },
    );
  });

  it('encoded slashes and dot segments in a path parameter are never let through', async () => {
    const f = farm();
    for (const r of pathRoutes) {
      for (const seg of ['%2F', 'a%2Fb', '%2e%2e', '%2E%2E', '%2e', '..%2F..', '%5C', 'a%5Cb']) {
        // A name may hold a slash (`a/b` is a valid worker or limit name): decoded, it names
        // nothing here, so the answer is a 4xx — never a route the segments would spell.
        // (A limit body that is refused, or `PUT /limits/%2F` would create the limit "/".)
        const res = await sendPath(f, r.method === 'PUT' ? { ...r, body: { max: -1 } } : r, seg);
        const where = `${r.method} ${r.url(seg, ':job')} → ${res.body}`;
        expect(res.statusCode, where).toBeGreaterThanOrEqual(400);
        expect(res.statusCode, where).toBeLessThan(500);
        // Backslashes and dot segments, encoded or not, are refused as the URL.
        if (refusedAsUrl(seg)) expectRefused(res, ['url'], where);
      }
    }
  });

  it('a NUL, lone surrogate or over-long value in a query parameter is refused naming it', async () => {
    const f = farm();
    const withNul = fc
      .tuple(ascii, ascii)
      .map(([a, b]) => `${encodeSegment(a)}%00${encodeSegment(b)}`);
    const value = fc
      .constantFrom(...queryCases)
      .chain((q) =>
        fc.tuple(
          fc.constant(q),
          q.nulOnly
            ? withNul
            : fc.oneof(
                withNul,
                nulSegment,
                typeof q.max === 'number' ? overLong(q.max + 1) : withNul,
              ),
        ),
      );
    await fc.assert(
      fc.asyncProperty(value, async ([q, v]) => {
        const res = await get(f, q.url(v, f.jobId));
        const where = `GET ${q.url(v.length > 200 ? `<${v.length} chars>` : v, ':job')}`;
        // Query strings decode bad UTF-8 to U+FFFD: a lone surrogate's bytes may then be
        // a valid (unknown) value; a NUL and an over-long value never are.
        if (v.includes('%00') || !v.includes('%')) expectRefused(res, [q.field], where);
        else expect(res.statusCode, where).toBeLessThan(500);
      }),
      { numRuns: runs },
    );
  });

  for (const r of bodyRoutes) {
    it(`${r.method} ${r.url(':id')}: NUL or a lone surrogate in a named field is refused naming it`, async () => {
      const f = farm();
      // The untainted body passes validation (accepted, or a worker report refused for its
      // unknown lease): what is refused below is the tainted field alone.
      const valid = await f.send(r.method, r.url(f.jobId), JSON.stringify(r.valid));
      expect(valid.statusCode, `untainted: ${valid.body}`).not.toBe(400);
      const cases = taintLeaf(r.valid)!.filter((t) => !outputFields.test(t.field) || t.key);
      await fc.assert(
        fc.asyncProperty(cases, async ({ body, field, key }) => {
          const res = await f.send(r.method, r.url(f.jobId), JSON.stringify(body));
          const where = `${f.store}: ${r.method} ${r.url(':id')} ${JSON.stringify(body).slice(0, 300)}`;
          expect(res.statusCode, `${where} → ${res.body}`).toBe(400);
          const { error } = res.json<ErrorBody>();
          expect(error.code, where).toBe('invalid_input');
          // A bad key is named under its object (`extraInfo.<key>`), a bad value by its path.
          if (key)
            expect(
              error.field?.startsWith(`${field}.`) || error.field === field,
              `${where}: ${error.field}`,
            ).toBe(true);
          else expect(error.field, where).toBe(field);
        }),
        { numRuns: runs },
      );
    });
  }
});
