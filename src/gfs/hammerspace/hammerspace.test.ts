import { mkdir, mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGfs } from '../contract.js';
import {
  createHammerspaceGfs,
  gatewayCommand,
  gatewayPath,
  parseReplicationDetails,
  parseSendTime,
  siteSyncFromRows,
} from './index.js';

/** Replies in the shape Hammerspace's `eval_json replication_details` gives (recorded by hand). */
const replies = {
  twoSites: JSON.stringify({
    REPLICATION_DETAILS_TABLE: [
      {
        SITE_NAME: { name: 'eu-west-2' },
        SEND_TIME: { date: '2026-11-22 10:00:05Z' },
        RECEIVE_TIME: { date: '2026-11-22 10:00:06Z' },
      },
      {
        SITE_NAME: { name: 'ap-south-1' },
        SEND_TIME: { date: '2026-11-22 09:58:00Z' },
      },
    ],
  }),
  anonymousRows: JSON.stringify({
    REPLICATION_DETAILS_TABLE: [
      { SEND_TIME: { date: '2026-11-22 10:00:05' } },
      { SEND_TIME: { date: '2026-11-22 10:00:07Z' } },
    ],
  }),
  otherSiteFields: JSON.stringify({
    REPLICATION_DETAILS_TABLE: [
      { DESTINATION: 'london', SEND_TIME: { date: '2026-11-22 10:00:05Z' } },
      { REMOTE_SITE: { string: 'mumbai' }, SEND_TIME: null },
      { SITE_ID: 20, SEND_TIME: { date: '2026-11-22T10:00:05.250Z' } },
    ],
  }),
  empty: JSON.stringify({ REPLICATION_DETAILS_TABLE: [] }),
};

const at = (iso: string) => Date.parse(iso);

describe('parseReplicationDetails', () => {
  it('reads one row per site with its send time (UTC)', () => {
    expect(parseReplicationDetails(replies.twoSites)).toEqual([
      { site: 'eu-west-2', sendTime: at('2026-11-22T10:00:05Z') },
      { site: 'ap-south-1', sendTime: at('2026-11-22T09:58:00Z') },
    ]);
  });

  it('names rows without a site field row0, row1, … and reads times without Z as UTC', () => {
    expect(parseReplicationDetails(replies.anonymousRows)).toEqual([
      { site: 'row0', sendTime: at('2026-11-22T10:00:05Z') },
      { site: 'row1', sendTime: at('2026-11-22T10:00:07Z') },
    ]);
  });

  it('finds other plausible site fields, and a row not sent yet', () => {
    expect(parseReplicationDetails(replies.otherSiteFields)).toEqual([
      { site: 'london', sendTime: at('2026-11-22T10:00:05Z') },
      { site: 'mumbai', sendTime: null },
      { site: '20', sendTime: at('2026-11-22T10:00:05.250Z') },
    ]);
  });

  it('tolerates trailing NULs and whitespace after the JSON', () => {
    expect(parseReplicationDetails(`${replies.empty}\n\0\0\0`)).toEqual([]);
  });

  it.each([
    ['not JSON', '{"REPLICATION_DETAILS_TABLE": [', /not JSON/],
    ['no table', '{"OTHER": []}', /no REPLICATION_DETAILS_TABLE/],
    ['table not rows', '{"REPLICATION_DETAILS_TABLE": [1, 2]}', /no REPLICATION_DETAILS_TABLE/],
    [
      'a bad date',
      '{"REPLICATION_DETAILS_TABLE": [{"SEND_TIME": {"date": "22/11/2026 10:00"}}]}',
      /SEND_TIME "22\/11\/2026 10:00"/,
    ],
    [
      'an impossible date',
      '{"REPLICATION_DETAILS_TABLE": [{"SEND_TIME": {"date": "2026-02-30 10:00:00Z"}}]}',
      /not a real date/,
    ],
    [
      'a date of the wrong type',
      '{"REPLICATION_DETAILS_TABLE": [{"SEND_TIME": {"date": 12}}]}',
      /row 0: SEND_TIME/,
    ],
  ])('gives a clear error on %s', (_name, text, message) => {
    expect(() => parseReplicationDetails(text)).toThrow(message);
    expect(() => parseReplicationDetails(text)).toThrow(
      expect.objectContaining({ code: 'unavailable' }),
    );
  });

  it('parses the send-time format', () => {
    expect(parseSendTime('2026-11-22 10:00:05Z')).toBe(at('2026-11-22T10:00:05Z'));
    expect(parseSendTime('2026-11-22 10:00:05')).toBe(at('2026-11-22T10:00:05Z'));
    expect(() => parseSendTime('2026-11-22 24:00:00')).toThrow(/not a real date/);
  });
});

describe('siteSyncFromRows', () => {
  const rows = parseReplicationDetails(replies.twoSites);

  it('is synced at a site when the mtime (whole seconds) is strictly before its send time', () => {
    // Modified at 10:00:04.900 → 10:00:04 < 10:00:05: London has it; Mumbai was sent an older state.
    expect(siteSyncFromRows(rows, at('2026-11-22T10:00:04.900Z'))).toEqual([
      { site: 'eu-west-2', synced: true, sendTime: at('2026-11-22T10:00:05Z') },
      { site: 'ap-south-1', synced: false, sendTime: at('2026-11-22T09:58:00Z') },
    ]);
  });

  it('is not synced when modified in the same second as the send', () => {
    const [london] = siteSyncFromRows(rows, at('2026-11-22T10:00:05.100Z'));
    expect(london!.synced).toBe(false);
  });

  it('decides per site, where the newest send time over all rows would say synced', () => {
    const mtime = at('2026-11-22T09:59:00Z');
    const newest = Math.max(...rows.map((r) => r.sendTime!));
    expect(Math.floor(mtime / 1000) * 1000 < newest).toBe(true); // Deadline's test: synced
    expect(siteSyncFromRows(rows, mtime).every((s) => s.synced)).toBe(false);
  });

  it('merges several rows for one site, keeping the newest send', () => {
    const merged = siteSyncFromRows(
      [
        { site: 'eu-west-2', sendTime: 1_000 },
        { site: 'eu-west-2', sendTime: null },
        { site: 'eu-west-2', sendTime: 9_000 },
      ],
      5_000,
    );
    expect(merged).toEqual([{ site: 'eu-west-2', synced: true, sendTime: 9_000 }]);
  });

  it('never counts a site that was not sent anything', () => {
    expect(siteSyncFromRows([{ site: 'x', sendTime: null }], 0)).toEqual([
      { site: 'x', synced: false, sendTime: null },
    ]);
  });
});

describe('gateway protocol', () => {
  it('appends the gateway name to the path as given, with no separator inserted', () => {
    expect(gatewayPath('/hs/show/Movie', 'ab12')).toBe('/hs/show/Movie.fs_command_gateway ab12');
    expect(gatewayPath('/hs/show/Movie/', 'ab12')).toBe('/hs/show/Movie/.fs_command_gateway ab12');
  });

  it('pads the command with 50 NULs on Windows only', () => {
    expect(gatewayCommand('linux')).toBe('./?.eval_json replication_details');
    expect(gatewayCommand('win32')).toBe(`./?.eval_json replication_details${'\0'.repeat(50)}`);
  });
});

describe('hammerspace adapter on a file system that is not Hammerspace', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'drover-gfs-hs-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('skips a directory whose gateway echoes the command, and removes the gateway file', async () => {
    const dir = join(root, 'show', 'Movie');
    await mkdir(dir, { recursive: true });
    const gfs = createGfs('hammerspace', {});
    expect(gfs.kind).toBe('hammerspace');
    expect(await gfs.syncState(dir)).toEqual({ path: dir, onGfs: false, sites: [], synced: false });
    expect(await gfs.syncState(`${dir}/`)).toMatchObject({ onGfs: false });
    expect(await readdir(join(root, 'show'))).toEqual(['Movie']);
    expect(await readdir(dir)).toEqual([]);
  });

  it('recognises the echo of the NUL-padded Windows command too', async () => {
    const dir = join(root, 'Movie');
    await mkdir(dir);
    const gfs = createHammerspaceGfs({ platform: 'win32' });
    expect(await gfs.syncState(`${dir}/`)).toMatchObject({ onGfs: false });
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses a missing directory without leaving a gateway file', async () => {
    const gfs = createHammerspaceGfs();
    await expect(gfs.syncState(join(root, 'missing'))).rejects.toMatchObject({
      code: 'not_found',
    });
    expect(await readdir(root)).toEqual([]);
  });
});

describe('hammerspace adapter with a stand-in for Hammerspace', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'drover-gfs-hs-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('asks through the gateway file and decides per site from the directory mtime', async () => {
    const dir = join(root, 'Movie');
    await mkdir(dir);
    const modified = new Date('2026-11-22T10:00:04.500Z');
    await utimes(dir, modified, modified);
    const asked: Array<[string, string]> = [];
    const gfs = createHammerspaceGfs({
      platform: 'linux',
      exchange: (path, command) => {
        asked.push([path, command]);
        return Promise.resolve(replies.twoSites);
      },
    });
    expect(await gfs.syncState(dir)).toEqual({
      path: dir,
      onGfs: true,
      synced: false,
      sites: [
        { site: 'eu-west-2', synced: true, sendTime: at('2026-11-22T10:00:05Z') },
        { site: 'ap-south-1', synced: false, sendTime: at('2026-11-22T09:58:00Z') },
      ],
    });
    expect(asked).toHaveLength(1);
    expect(asked[0]![0]).toMatch(/\/Movie\.fs_command_gateway [0-9a-f]{16}$/);
    expect(asked[0]![1]).toBe('./?.eval_json replication_details');
  });

  it('says which directory got a bad reply', async () => {
    const dir = join(root, 'Movie');
    await mkdir(dir);
    const gfs = createHammerspaceGfs({ exchange: () => Promise.resolve('<html>oops</html>') });
    await expect(gfs.syncState(dir)).rejects.toThrow(`${dir}: unexpected Hammerspace`);
  });
});

describe('createGfs', () => {
  it('creates each kind and refuses unknown kinds and missing options', () => {
    expect(createGfs('local', {}).kind).toBe('local');
    expect(createGfs('simulated', { root: '/tmp/x' }).kind).toBe('simulated');
    expect(createGfs('hammerspace', { maxReplyBytes: '4096' }).kind).toBe('hammerspace');
    expect(() => createGfs('nfs', {})).toThrow(
      expect.objectContaining({ code: 'invalid_input', field: 'gfs' }),
    );
    expect(() => createGfs('simulated', {})).toThrow(/root/);
    expect(() => createGfs('hammerspace', { maxReplyBytes: 'lots' })).toThrow(/maxReplyBytes/);
  });
});
