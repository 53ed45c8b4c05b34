import { chmodSync, chownSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DroverError } from '../core/errors.js';
import { readTokenFile } from './token-file.js';

const posix = process.platform !== 'win32';

function tokenFile(mode: number, text = 'drv_secret\n'): string {
  const file = join(mkdtempSync(join(tmpdir(), 'drover-token-')), 'token');
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

function refusal(file: string): DroverError {
  try {
    readTokenFile(file);
  } catch (error) {
    expect(error).toBeInstanceOf(DroverError);
    return error as DroverError;
  }
  throw new Error('the file was accepted');
}

describe('readTokenFile', () => {
  it('reads a private token file', () => {
    expect(readTokenFile(tokenFile(0o600))).toBe('drv_secret');
    expect(readTokenFile(tokenFile(0o400))).toBe('drv_secret');
  });

  it.runIf(posix)('refuses a file group or others may read or write', () => {
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602, 0o660]) {
      const file = tokenFile(mode);
      const error = refusal(file);
      expect(error.code).toBe('invalid_input');
      expect(error.message).toContain(`mode ${mode.toString(8)}`);
      expect(error.message).toContain(`chmod 600 ${file}`);
    }
  });

  it.runIf(posix && process.getuid?.() === 0)('refuses a file another user owns', () => {
    const file = tokenFile(0o600);
    chownSync(file, 65534, 65534);
    expect(refusal(file).message).toMatch(/belongs to uid 65534, not to this user \(uid 0\)/);
  });

  it.runIf(posix && process.getuid?.() !== 0)('refuses a file another user owns', () => {
    // Owned by root on every POSIX system this runs on.
    expect(refusal('/etc/passwd').message).toMatch(/belongs to uid 0, not to this user/);
  });

  it('refuses a missing or empty file, a folder, and more than one word', () => {
    expect(refusal('/nonexistent/token').message).toMatch(/cannot read the token file/);
    expect(refusal(tokenFile(0o600, '\n')).message).toMatch(
      /must hold one token \(found nothing\)/,
    );
    expect(refusal(tokenFile(0o600, 'a b')).message).toMatch(/found several words/);
    expect(refusal(mkdtempSync(join(tmpdir(), 'drover-token-'))).message).toMatch(/not a file/);
  });
});
