import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  FOLDER_RESULT_PREFIX,
  makeDirectoriesSettingsSchema,
  parseAppSettings,
} from '../../../core/app-settings.js';
import { createGfs } from '../../../gfs/contract.js';
import { waitForSync } from './sync-loop.js';

/**
 * The folder job of the gfs-sync plugin, run by the worker as its own process:
 * `node main.js '<settings JSON>'`. The directories arrive already mapped for this
 * worker's region. Output follows Deadline's Hammerspace plugin line for line.
 */
async function main(): Promise<number> {
  const settings = parseAppSettings(
    makeDirectoriesSettingsSchema,
    JSON.parse(process.argv[2] ?? '{}'),
  );
  const gfs = createGfs(settings.gfs, settings.gfsRoot ? { root: settings.gfsRoot } : {});
  const print = (line: string) => process.stdout.write(`${line}\n`);
  const rule = '-'.repeat(50);

  print('Directories to create: ');
  for (const dir of settings.directories) print(dir);
  print(rule);
  for (const dir of settings.directories) await mkdir(dir, { recursive: true });

  const outcomes = await waitForSync({
    directories: settings.directories,
    iterationCount: settings.iterationCount,
    iterationDelayMs: settings.iterationDelay * 1000,
    check: (dir) => gfs.syncState(dir),
    sleep: (ms) => sleep(ms),
    print,
  });
  print(rule);
  for (const kind of ['Sync Complete', 'Sync Timed Out', 'Sync Skipped'] as const) {
    settings.directories.forEach((dir, i) => {
      if (outcomes[i] === kind) print(`${kind}: ${dir}`);
    });
  }
  print(`${FOLDER_RESULT_PREFIX}${JSON.stringify({ outcomes })}`);
  // Like the original, a timeout is not a failure: the render job is released either way.
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
