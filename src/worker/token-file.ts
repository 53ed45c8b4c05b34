import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { DroverError } from '../core/errors.js';

/**
 * Reads a worker's token from a file (`drover worker --token-file`, `DROVER_TOKEN_FILE`).
 * A file is better than the environment: a process's environment is copied into every
 * process it starts and stays readable in /proc/<pid>/environ for its whole life.
 *
 * The file must belong to the user the worker runs as and be private to it (no permission
 * bits for group or others, like ssh's private keys): a token anybody else on the machine
 * can read or replace is not the worker's. Checked on the opened file (no race with a
 * rename between the check and the read). Not checked on Windows, which has no such modes.
 */
export function readTokenFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new DroverError(
      'invalid_input',
      `cannot read the token file ${path}: ${(error as Error).message}`,
      'token-file',
    );
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      throw new DroverError('invalid_input', `the token file ${path} is not a file`, 'token-file');
    }
    if (process.platform !== 'win32') {
      const uid = process.getuid?.();
      if (uid !== undefined && stat.uid !== uid) {
        throw new DroverError(
          'invalid_input',
          `the token file ${path} belongs to uid ${stat.uid}, not to this user (uid ${uid}): ` +
            'a token file must be the worker user’s own',
          'token-file',
        );
      }
      if ((stat.mode & 0o077) !== 0) {
        const mode = (stat.mode & 0o777).toString(8).padStart(3, '0');
        throw new DroverError(
          'invalid_input',
          `the token file ${path} may be read or written by others (mode ${mode}): ` +
            `make it private with \`chmod 600 ${path}\``,
          'token-file',
        );
      }
    }
    const token = readFileSync(fd, 'utf8').trim();
    if (token === '' || /\s/.test(token)) {
      throw new DroverError(
        'invalid_input',
        `the token file ${path} must hold one token (found ${token === '' ? 'nothing' : 'several words'})`,
        'token-file',
      );
    }
    return token;
  } finally {
    closeSync(fd);
  }
}
