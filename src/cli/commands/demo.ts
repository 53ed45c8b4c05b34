import { resolve } from 'node:path';
import { runGfsSim } from '../../gfs/simulated/index.js';
import { runRaceScenario, type RaceScenario } from '../demo/race.js';
import { CommandFailed } from '../errors.js';
import { printJson } from '../output.js';

export interface RaceCommandOptions {
  syncDelay: number;
  frames: number;
  regions: string;
  workersPerRegion: number;
  data?: string;
  keep?: boolean;
  json?: boolean;
}

function summary(s: RaceScenario): string {
  const lines = [
    `gfs-sync ${s.plugin}: ${s.collisionFolders} collision folder(s); ${s.framesInIntendedFolder}/${s.framesExpected} frames in the intended folder at every site (${s.seconds}s, job ${s.jobState})`,
  ];
  for (const site of s.sites) {
    lines.push(
      `  ${site.site}: ${site.framesInIntendedFolder} frames in the intended folder; collisions: ${site.collisionFolders.join(', ') || 'none'}`,
    );
  }
  return lines.join('\n');
}

/**
 * `drover demo race`: the multi-region output-folder race, shown. The same job renders
 * twice on a fresh miniature farm: gfs-sync disabled (the race happens), then global (it
 * cannot).
 */
export async function demoRace(o: RaceCommandOptions): Promise<void> {
  // Ctrl-C stops the running scenario: its farm stops and its temporary folder is removed.
  const abort = new AbortController();
  const stop = () => abort.abort();
  const options = {
    regions: o.regions
      .split(',')
      .map((r) => r.trim())
      .filter(Boolean),
    workersPerRegion: o.workersPerRegion,
    frames: o.frames,
    syncDelayMs: o.syncDelay * 1000,
    ...(o.data ? { data: resolve(o.data) } : {}),
    ...(o.keep ? { keep: true } : {}),
    ...(o.json ? {} : { log: (line: string) => process.stderr.write(`${line}\n`) }),
    signal: abort.signal,
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const disabled = await runRaceScenario('disabled', options);
    if (!o.json) process.stdout.write(`${summary(disabled)}\n`);
    const global = await runRaceScenario('global', options);
    if (o.json) return printJson({ disabled, global });
    process.stdout.write(`${summary(global)}\n`);
  } catch (err) {
    if (abort.signal.aborted) {
      throw new CommandFailed('interrupted; the demo farms were stopped and removed', 130);
    }
    throw err;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

export interface GfsSimCommandOptions {
  root: string;
  sites: string;
  syncDelay: number;
}

/** `drover gfs-sim`: the simulated global file system on its own, until Ctrl-C. */
export async function gfsSim(o: GfsSimCommandOptions): Promise<void> {
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await runGfsSim({
    root: resolve(o.root),
    sites: o.sites
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    delayMs: o.syncDelay * 1000,
    signal: abort.signal,
  });
}
