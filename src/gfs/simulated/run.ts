import { createSimulatedGfsLayout } from './layout.js';
import { Replicator } from './replicator.js';

export interface GfsSimOptions {
  root: string;
  /** Site names in order (`us-west-2`), optionally with an id (`us-west-2=0`). */
  sites: string[];
  delayMs: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/**
 * Runs the simulated GFS's replicator until `signal` aborts (`drover gfs-sim`): creates or
 * reopens the layout, then scans every 100 ms.
 */
export async function runGfsSim(options: GfsSimOptions): Promise<void> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const layout = await createSimulatedGfsLayout({ root: options.root, sites: options.sites });
  const replicator = await Replicator.open({ root: options.root, delayMs: options.delayMs, log });
  log(
    `simulated GFS at ${options.root}: sites ${layout.sites
      .map((s) => `${s.name} (#S=${s.id})`)
      .join(', ')}, replication delay ${options.delayMs} ms`,
  );
  if (options.signal?.aborted) return;
  replicator.start();
  await new Promise<void>((resolveRun) => {
    if (!options.signal) return; // runs until the process ends
    options.signal.addEventListener('abort', () => resolveRun(), { once: true });
  });
  await replicator.stop();
  log('simulated GFS stopped');
}
