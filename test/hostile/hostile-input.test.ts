import fc from 'fast-check';
import { expect, it } from 'vitest';
import { onEachStore, type ErrorBody } from './hostile-farm.js';
import { encodeSegment, tainted, taintLeaf } from './hostile-text.js';

/**
 * Hostile input, property-based, on SQLite and on PostgreSQL: every endpoint that takes
 * input gets malformed JSON, wrong types, huge numbers and strings, deep nesting, unicode
 * (NUL and lone surrogates included), path traversal, prototype keys, percent-encoded path
 * parameters and oversized bodies. Never a 5xx, never a crash; a refusal names what was
 * wrong and leaves the store exactly as it was (`hostile-farm.ts` checks every answer).
 */

const nasty = fc.oneof(
  fc.constantFrom(
    '../../etc/passwd',
    '/gfs/../../etc',
    '..\\..\\windows',
    '\u0000',
    'a\u0000b',
    '\ud800',
    '\udfff',
    'a\ud800b',
    '\udc00\ud800',
    '\u202e\u0647\ud83d\ude00',
    '__proto__',
    'constructor',
    '%00',
    '{{7*7}}',
    '$(rm -rf /)',
    ';shutdown',
    'x'.repeat(70_000),
    '1e309',
    '-0',
  ),
  fc.string({ unit: 'grapheme', maxLength: 64 }),
  fc.string({ unit: 'binary', maxLength: 64 }),
  tainted,
);
const hugeNumber = fc.oneof(
  fc.constantFrom(
    Number.MAX_SAFE_INTEGER,
    -Number.MAX_SAFE_INTEGER,
    1e300,
    -1e300,
    2 ** 53 + 1,
    0.5,
    -1,
  ),
  fc.double({ noNaN: true }),
  fc.integer(),
);
const leaf = fc.oneof(nasty, hugeNumber, fc.boolean(), fc.constant(null));
/** Any JSON value, including deep nesting. */
const anyJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    leaf,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(
      fc.oneof(nasty, fc.constantFrom('__proto__', 'constructor', 'prototype')),
      tie('value'),
      { maxKeys: 4 },
    ),
  ),
})).value;
const deep = fc.integer({ min: 100, max: 1500 }).map((n) => {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v;
});

/** Valid bodies with one field replaced by something hostile. */
function mutate(valid: Record<string, unknown>): fc.Arbitrary<unknown> {
  const keys = Object.keys(valid);
  return fc
    .record({ key: fc.oneof(fc.constantFrom(...keys), nasty), value: fc.oneof(anyJson, deep) })
    .map(({ key, value }) => ({ ...valid, [key]: value }));
}

const endpoints: Array<{
  method: 'POST' | 'PATCH' | 'PUT' | 'GET' | 'DELETE';
  url: (jobId: string) => string;
  valid?: Record<string, unknown>;
}> = [
  {
    method: 'POST',
    url: () => '/api/v1/jobs',
    valid: {
      plugin: 'CommandLine',
      pluginInfo: { executable: '/bin/true' },
      frames: '1-10',
      outputDirectories: ['/gfs/a'],
    },
  },
  { method: 'PATCH', url: (jobId) => `/api/v1/jobs/${jobId}`, valid: { priority: 10 } },
  { method: 'POST', url: (jobId) => `/api/v1/jobs/${jobId}/actions`, valid: { action: 'suspend' } },
  { method: 'POST', url: (jobId) => `/api/v1/jobs/${jobId}/tasks/requeue`, valid: { tasks: [0] } },
  {
    method: 'POST',
    url: () => '/api/v1/workers/register',
    valid: { name: 'w2', capabilities: { cpus: 1, memoryMb: 1, os: 'linux' } },
  },
  { method: 'POST', url: () => '/api/v1/workers/w1/heartbeat', valid: { tasks: [] } },
  { method: 'POST', url: () => '/api/v1/workers/w1/work', valid: { waitMs: 0, claim: false } },
  { method: 'POST', url: () => '/api/v1/workers/w1/logs', valid: { lease: 'x', chunks: [] } },
  {
    method: 'POST',
    url: () => '/api/v1/workers/w1/report',
    valid: { lease: 'x', outcome: 'completed' },
  },
  { method: 'PATCH', url: () => '/api/v1/workers/w1', valid: { enabled: true } },
  { method: 'PUT', url: () => '/api/v1/limits/nuke', valid: { max: 2 } },
  {
    method: 'PATCH',
    url: () => '/api/v1/plugins/gfs-sync',
    valid: { config: { iterationCount: 5 } },
  },
  { method: 'POST', url: () => '/api/v1/paths', valid: { prefix: '/gfs/', replacement: '/mnt/' } },
  { method: 'POST', url: () => '/api/v1/paths/map', valid: { path: '/gfs/a', region: 'r' } },
  { method: 'POST', url: () => '/api/v1/tokens', valid: { name: 'n', role: 'user' } },
  { method: 'POST', url: () => '/api/v1/aux-files', valid: { name: 'scene.ma', content: 'aGk=' } },
  {
    method: 'POST',
    url: () => '/api/v1/fleets',
    valid: { name: 'f1', provider: 'local', region: 'r1', pools: ['gpu'], max: 2 },
  },
  { method: 'PATCH', url: () => '/api/v1/fleets/f0', valid: { max: 3, standby: 1 } },
  {
    method: 'POST',
    url: () => '/api/v1/versions',
    valid: { folder: '/pub/a/b/v001', product: 'a/b', comment: '' },
  },
  { method: 'POST', url: () => '/api/v1/versions/v1/approve', valid: { comment: 'ok' } },
];

/** Deadline's Web Service: the routes that read a body (refusals are texts, not JSON). */
const deadlineEndpoints: Array<{
  method: 'POST' | 'PUT';
  url: string;
  valid: (jobId: string) => Record<string, unknown>;
}> = [
  {
    method: 'POST',
    url: '/api/jobs',
    valid: () => ({
      JobInfo: { Plugin: 'CommandLine', Frames: '1-3', Priority: 50, Whitelist: '' },
      PluginInfo: { Executable: '/bin/true', Arguments: '<AUXFILE0>' },
      AuxFiles: [],
    }),
  },
  {
    method: 'POST',
    url: '/api/jobs',
    valid: () => ({
      Jobs: [{ JobInfo: { Plugin: 'CommandLine' }, PluginInfo: { Executable: '/bin/true' } }],
      Dependent: 'true',
    }),
  },
  { method: 'PUT', url: '/api/jobs', valid: (JobID) => ({ Command: 'suspend', JobID }) },
  {
    method: 'PUT',
    url: '/api/jobs',
    valid: (JobID) => ({ Command: 'save', JobID, Job: { Props: { Pri: 40, Name: 'n' } } }),
  },
  {
    method: 'PUT',
    url: '/api/jobs',
    valid: (JobID) => ({ Command: 'setjobmachinelimit', JobID, Limit: 2, SlaveList: 'w1' }),
  },
  {
    method: 'PUT',
    url: '/api/tasks',
    valid: (JobID) => ({ Command: 'complete', JobID, TaskList: [0] }),
  },
  {
    method: 'PUT',
    url: '/api/limitgroups',
    valid: () => ({ Command: 'set', Name: 'l', Limit: 2 }),
  },
  { method: 'POST', url: '/api/mappedpaths', valid: () => ({ OS: 'Linux', Paths: ['/gfs/a'] }) },
];

await onEachStore('hostile input', (farm, runs) => {
  it('the store fingerprint sees a change in any row (so "unchanged" means something)', async () => {
    const f = farm();
    const before = await f.fingerprint();
    expect(await f.fingerprint()).toBe(before);
    const res = await f.send('PUT', '/api/v1/limits/fingerprint', JSON.stringify({ max: 1 }));
    expect(res.statusCode, res.body).toBe(200);
    const created = await f.fingerprint();
    expect(created).not.toBe(before);
    await f.send('PUT', '/api/v1/limits/fingerprint', JSON.stringify({ max: 2 }));
    expect(await f.fingerprint()).not.toBe(created);
  });

  for (const e of endpoints) {
    it(`${e.method} ${e.url(':id')}: hostile bodies never break the manager`, async () => {
      const f = farm();
      const taint = e.valid ? taintLeaf(e.valid) : undefined;
      const bodies = fc.oneof(
        anyJson,
        deep,
        e.valid ? mutate(e.valid) : anyJson,
        taint ? taint.map((t) => t.body) : anyJson,
      );
      await fc.assert(
        fc.asyncProperty(bodies, async (body) => {
          await f.send(e.method, e.url(f.jobId), JSON.stringify(body));
        }),
        { numRuns: runs },
      );
    });
  }

  it('refuses malformed JSON and wrong content types without a 5xx', async () => {
    const f = farm();
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.constantFrom(...endpoints),
        async (raw, e) => {
          await f.send(e.method, e.url(f.jobId), raw);
          await f.send(e.method, e.url(f.jobId), raw, 'text/plain');
        },
      ),
      { numRuns: runs },
    );
  });

  it('refuses 50,000-deep JSON without a 5xx', async () => {
    const f = farm();
    for (const e of endpoints) {
      await f.send(e.method, e.url(f.jobId), '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000));
      await f.send(e.method, e.url(f.jobId), '['.repeat(50_000) + ']'.repeat(50_000));
    }
  });

  it('refuses oversized bodies with 413', async () => {
    const res = await farm().send(
      'POST',
      '/api/v1/jobs',
      JSON.stringify({ plugin: 'CommandLine', comment: 'x'.repeat(3 * 1024 * 1024) }),
    );
    expect(res.statusCode).toBe(413);
    expect(res.json<ErrorBody>().error.code).toBe('too_large');
  });

  it('survives hostile path parameters and query strings', async () => {
    const f = farm();
    // Over real HTTP: the target reaches the router byte for byte (see `overHttp`).
    // Segments as sent: hostile text percent-encoded (lone surrogates as the bytes WTF-8
    // would give them), and raw encodings no decoder takes (`%ZZ`, `%ED%A0%80`, `%C0%AE`).
    const segment = fc.oneof(
      nasty.map(encodeSegment).filter((seg) => seg.length <= 5000),
      fc.constantFrom(
        '..',
        '%2e%2e',
        '%2E',
        '%2F',
        'a%2Fb',
        '%5C',
        '%00',
        'a%00b',
        '%ZZ',
        'a%',
        '%ED%A0%80',
        '%C0%AE',
        'a'.repeat(5000),
      ),
      fc.integer({ min: 101, max: 5000 }).map((n) => 'f'.repeat(n)),
    );
    // A segment and six values fit in Node's 16 KiB request head (a longer head is refused by
    // Node's HTTP parser with a 431 before the manager sees it).
    const value = fc.oneof(
      nasty.map(encodeSegment).filter((q) => q.length <= 1000),
      fc.constantFrom('%00', 'a%00b', '%ZZ'),
    );
    await fc.assert(
      fc.asyncProperty(segment, value, async (s, q) => {
        const query = `?state=${q}&limit=${q}&after=${q}&type=${q}&job=${q}&user=${q}`;
        const http = (method: string, url: string, body?: unknown) =>
          f.send(
            method,
            url,
            body === undefined ? undefined : JSON.stringify(body),
            undefined,
            'http',
          );
        for (const url of [
          `/api/v1/jobs/${s}`,
          `/api/v1/jobs/${s}/tasks${query}`,
          `/api/v1/jobs/${f.jobId}/tasks/${s}/log${query}`,
          `/api/v1/jobs/${s}/outputs/latest`,
          `/api/v1/jobs/${f.jobId}/outputs/0/${s}`,
          `/api/v1/jobs${query}`,
          `/api/v1/events${query}`,
          `/api/v1/workers/${s}`,
          `/api/v1/plugins/${s}`,
        ]) {
          await http('GET', url);
        }
        await http('PATCH', `/api/v1/jobs/${s}`, { priority: 10 });
        await http('POST', `/api/v1/jobs/${s}/actions`, { action: 'suspend' });
        await http('PATCH', `/api/v1/workers/${s}`, { enabled: true });
        await http('PUT', `/api/v1/limits/${s}`, { max: 'x' });
        await http('DELETE', `/api/v1/paths/${s}`);
        await http('DELETE', `/api/v1/tokens/${s}`);
      }),
      { numRuns: runs },
    );
  });
  // Last: their successful submissions add rows every later fingerprint would read.
  for (const e of deadlineEndpoints) {
    it(`Deadline ${e.method} ${e.url} (${Object.keys(e.valid('id')).join(',')}): hostile bodies never break the Web Service`, async () => {
      const f = farm();
      const valid = e.valid(f.jobId);
      const taint = taintLeaf(valid);
      const bodies = fc.oneof(
        anyJson,
        deep,
        mutate(valid),
        taint ? taint.map((t) => t.body) : deep,
      );
      await fc.assert(
        fc.asyncProperty(bodies, async (body) => {
          await f.sendDeadline(e.method, e.url, JSON.stringify(body));
        }),
        { numRuns: runs },
      );
    });
  }

  it('Deadline: malformed bodies, any content type, and hostile query strings never break the Web Service', async () => {
    const f = farm();
    const value = fc.oneof(
      nasty.map(encodeSegment).filter((q) => q.length <= 1000),
      fc.constantFrom('%00', 'a%00b', '%ZZ', 'true', ',,,', '0'),
    );
    const query = (q: string) =>
      fc.constantFrom(
        `/api/jobs?JobID=${q}`,
        `/api/jobs?States=${q}&IdOnly=${q}`,
        `/api/jobs?JobID=${q}&Details=true`,
        `/api/tasks?JobID=${q}&TaskID=${q}`,
        `/api/jobreports?JobID=${q}&Data=${q}`,
        `/api/taskreports?JobID=${q}&TaskID=${q}&Data=${q}`,
        `/api/limitgroups?Names=${q}`,
        `/api/slaves?Data=${q}&Name=${q}`,
        `/api/users?Name=${q}`,
        `/api/repository?Version=${q}`,
      );
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.constantFrom(...deadlineEndpoints),
        value.chain((q) => fc.tuple(fc.constant(q), query(q))),
        async (raw, e, [q, url]) => {
          await f.sendDeadline(e.method, e.url, raw, 'text/plain');
          await f.sendDeadline('GET', url);
          if (q.length % 7 === 0) await f.sendDeadline('DELETE', `/api/jobs?JobID=${q}`);
        },
      ),
      { numRuns: runs },
    );
  });
});
