import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { managerPath, publishSettings } from './config.js';
import { reviewJobFor, reviewMedia } from './review.js';
import { listVersionFolder, reviewSequence, scanResult } from './scan.js';
import type { Version } from '../../../core/versions.js';

const files = (names: string[], size = 10) => names.map((name) => ({ name, size }));

describe('scanning a version folder', () => {
  it('records each sequence and single file, and checks sequences against the job frames', () => {
    const r = scanResult(
      [
        ...files(['beauty.1001.exr', 'beauty.1002.exr', 'beauty.1004.exr']),
        { name: 'beauty.1003.exr', size: 0 },
        ...files(['depth.1001.exr', 'depth.1002.exr', 'depth.1003.exr', 'depth.1004.exr']),
        ...files(['notes.txt']),
      ],
      [1001, 1002, 1003, 1004, 1005],
    );
    expect(r.missingFrames).toEqual([1003, 1005]);
    expect(r.representations.map((x) => [x.name, x.pattern, x.frames, x.fileCount])).toEqual([
      ['beauty', 'beauty.####.exr', '1001-1004', 4],
      ['depth', 'depth.####.exr', '1001-1004', 4],
      ['notes.txt', 'notes.txt', '', 1],
    ]);
    expect(r.representations[0]).toMatchObject({ ext: 'exr', first: 1001, last: 1004, bytes: 30 });
  });

  it('without a job, checks each sequence against its own range; no sequence: all missing', () => {
    expect(scanResult(files(['p.1.png', 'p.2.png', 'p.5.png'])).missingFrames).toEqual([3, 4]);
    expect(scanResult(files(['readme.txt']), [1, 2]).missingFrames).toEqual([1, 2]);
  });

  it('reviews the longest image sequence', () => {
    const r = scanResult(
      files([
        'a.1.png',
        'a.2.png',
        'b.1.exr',
        'b.2.exr',
        'b.3.exr',
        'c.1.txt',
        'c.2.txt',
        'c.3.txt',
        'c.4.txt',
      ]),
    );
    expect(reviewSequence(r.sequences)?.head).toBe('b.');
  });

  it('lists sub-folders but not the scene snapshot and review media', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-scan-'));
    for (const sub of ['scene', 'review', 'aov']) mkdirSync(join(dir, sub));
    writeFileSync(join(dir, 'scene', 'shot.blend'), 'x');
    writeFileSync(join(dir, 'review', 'r.mp4'), 'x');
    writeFileSync(join(dir, 'aov', 'z.0001.exr'), 'xyz');
    writeFileSync(join(dir, 'beauty.0001.exr'), 'xy');
    expect((await listVersionFolder(dir)).sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: 'aov/z.0001.exr', size: 3 },
      { name: 'beauty.0001.exr', size: 2 },
    ]);
  });
});

describe('review jobs', () => {
  it('asks the review app for the sequence from its first frame, into <folder>/review', () => {
    const version = {
      id: 'v1',
      product: 'show/sh010/beauty',
      name: 'v003',
      number: 3,
      folder: '/pub/show/sh010/beauty/v003',
      submittedBy: 'ann',
    } as Version;
    const [seq] = scanResult(files(['beauty.1001.exr', 'beauty.1002.exr'])).sequences;
    const job = reviewJobFor(version, seq!, publishSettings({ roots: '/pub' }), undefined);
    expect(job).toMatchObject({
      plugin: 'review',
      dependencies: [],
      eventOptIns: ['publish'],
      pluginInfo: {
        inputDirectory: version.folder,
        inputPattern: 'beauty.%04d.exr',
        firstFrame: 1001,
        lastFrame: 1002,
        outputDirectory: `${version.folder}/review`,
        outputName: 'beauty_v003',
        product: 'show/sh010/beauty',
        version: 3,
      },
    });
    expect(reviewMedia(version).movie).toBe(`${version.folder}/review/beauty_v003.mp4`);
  });

  it('maps publish paths with the manager region rules only', () => {
    const rules = [
      {
        id: 1,
        prefix: '/gfs/',
        replacement: '/sites/a/',
        region: 'a',
        os: '',
        caseSensitive: true,
      },
    ];
    expect(managerPath('/gfs/publish/x', rules, { managerRegion: 'a' })).toBe('/sites/a/publish/x');
    expect(managerPath('/gfs/publish/x', rules, { managerRegion: '' })).toBe('/gfs/publish/x');
  });
});
