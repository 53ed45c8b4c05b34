/**
 * Hammerspace through its shadow-gateway protocol, as Deadline's Hammerspace event plugin
 * speaks it: write a command into a file named `<dir>.fs_command_gateway <random hex>`,
 * close it, reopen it and read the answer. Hammerspace answers in JSON; any other file system
 * just gives back the text that was written, which means "not on Hammerspace" (Deadline's
 * "Sync Skipped").
 */
import { randomBytes } from 'node:crypto';
import { open, rm, writeFile } from 'node:fs/promises';
import { DroverError } from '../../core/errors.js';
import { statDirectory } from '../directory.js';
import { directorySync, notOnGfs, type GlobalFileSystem } from '../types.js';
import { parseReplicationDetails, siteSyncFromRows } from './replication-details.js';

export {
  parseReplicationDetails,
  parseSendTime,
  siteSyncFromRows,
  type ReplicationRow,
} from './replication-details.js';

export const REPLICATION_DETAILS_COMMAND = './?.eval_json replication_details';

/** Replies are small (one row per site); anything larger is refused rather than buffered. */
export const DEFAULT_MAX_REPLY_BYTES = 1024 * 1024;

export interface HammerspaceGfsOptions {
  /** Most bytes of a gateway reply read; default 1 MiB. */
  maxReplyBytes?: number;
  /** Platform whose gateway dialect to speak; default `process.platform`. */
  platform?: NodeJS.Platform;
  /**
   * One exchange with the gateway: write `command` to the file at `path`, close, reopen, read
   * the answer (at most `maxBytes`). Default: the real file; tests stand in for Hammerspace.
   */
  exchange?: (path: string, command: string, maxBytes: number) => Promise<string>;
}

/** The text written to the gateway. On Windows Deadline's plugin pads it with 50 NULs. */
export function gatewayCommand(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32'
    ? REPLICATION_DETAILS_COMMAND + '\0'.repeat(50)
    : REPLICATION_DETAILS_COMMAND;
}

/**
 * The gateway file for a directory: the path string with `.fs_command_gateway <id>` appended,
 * no separator inserted — `/hs/show/Movie` asks about `Movie` through a sibling shadow file,
 * `/hs/show/Movie/` through one inside it. Both are how the original plugin forms it.
 */
export function gatewayPath(dir: string, id: string): string {
  return `${dir}.fs_command_gateway ${id}`;
}

export function createHammerspaceGfs(options: HammerspaceGfsOptions = {}): GlobalFileSystem {
  const maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
  const command = gatewayCommand(options.platform);
  const exchange = options.exchange ?? exchangeThroughFile;
  return {
    kind: 'hammerspace',
    async syncState(dir) {
      // The mtime is read before the gateway file exists: on a plain file system a gateway
      // file inside the directory would itself move the directory's mtime.
      const stats = await statDirectory(dir);
      const gateway = gatewayPath(dir, randomBytes(8).toString('hex'));
      try {
        const reply = await exchange(gateway, command, maxReplyBytes);
        if (reply === command || stripNuls(reply) === stripNuls(command)) return notOnGfs(dir);
        let rows;
        try {
          rows = parseReplicationDetails(reply);
        } catch (error) {
          if (error instanceof DroverError) {
            throw new DroverError(error.code, `${dir}: ${error.message}`);
          }
          throw error;
        }
        return directorySync(dir, siteSyncFromRows(rows, stats.mtimeMs));
      } finally {
        // Deadline's plugin leaves its gateway files behind; we always remove ours. A failure
        // to remove must not hide the answer (or the real error).
        await rm(gateway, { force: true }).catch(() => {});
      }
    },
  };
}

async function exchangeThroughFile(
  path: string,
  command: string,
  maxBytes: number,
): Promise<string> {
  await writeFile(path, command);
  return readBounded(path, maxBytes);
}

async function readBounded(path: string, maxBytes: number): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) {
      throw new DroverError(
        'too_large',
        `Hammerspace reply at ${path} is larger than ${maxBytes} bytes`,
      );
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await handle.close();
  }
}

function stripNuls(text: string): string {
  return text.replace(/\0+$/, '');
}
