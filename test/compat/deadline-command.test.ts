import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseInfo, readDeadlineText } from '../../src/cli/commands/deadline-command.js';

const dir = mkdtempSync(join(tmpdir(), 'drover-dc-'));
const TEXT =
  'Plugin=CommandLine\r\n  Name = shot 010 \r\n\r\nArguments=-x a=b\nnot a pair\nFrames=1-10';

function file(name: string, bytes: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

describe('deadlinecommand info files', () => {
  const expected = {
    Plugin: 'CommandLine',
    Name: 'shot 010',
    Arguments: '-x a=b',
    Frames: '1-10',
  };

  it('split at the first =, trimmed, blank and pairless lines skipped, last line without newline', () => {
    expect(parseInfo(TEXT)).toEqual(expected);
  });

  it('reads UTF-8 (with or without BOM) and UTF-16 LE/BE with BOM', () => {
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(TEXT, 'utf16le')]);
    const be = Buffer.from(le);
    be.swap16();
    const encodings: [string, Buffer][] = [
      ['utf8.txt', Buffer.from(TEXT, 'utf8')],
      ['utf8bom.txt', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(TEXT)])],
      ['utf16le.txt', le],
      ['utf16be.txt', be],
    ];
    for (const [name, bytes] of encodings) {
      expect(parseInfo(readDeadlineText(file(name, bytes))), name).toEqual(expected);
    }
  });

  it('a missing file is a clear error', () => {
    expect(() => readDeadlineText(join(dir, 'nope.txt'))).toThrow(/cannot read .*no such file/);
  });
});
