import type { ConfigEntry } from '../../../core/plugin-config.js';
import type { EventPlugin } from '../../plugin.js';

/**
 * scaler: makes fleets' machines appear when work does and go when it ends (issue 12). The
 * reconciling itself is `src/fleet/scaler.ts`, which runs on the manager holding the
 * `scaler` lease and acts only while this plugin is Global; these handlers wake it at once
 * on the events that change demand (it also looks every second and on house cleaning).
 *
 * Waking is a hint shared by the scalers of this process (several managers in one test
 * process wake each other early; each then reconciles its own farm), never a command.
 */
const wakers = new Set<() => void>();

/** Registers a scaler's wake-up; returns the function that unregisters it. */
export function onScalerWake(wake: () => void): () => void {
  wakers.add(wake);
  return () => wakers.delete(wake);
}

function wakeScalers(): void {
  for (const w of [...wakers]) w();
}

export const SCALER_PLUGIN = 'scaler';

const config: ConfigEntry[] = [
  {
    key: 'farmId',
    type: 'string',
    label: 'Farm Id',
    category: 'Machines',
    default: '',
    description:
      'The tag (drover:farm) every launched machine carries; machines of another farm are never touched. Blank: made up on the first start and saved here.',
  },
  {
    key: 'registerTimeout',
    type: 'integer',
    label: 'Register Timeout (s)',
    category: 'Machines',
    default: 600,
    min: 5,
    max: 86_400,
    description: 'A machine whose worker has not registered this long after launch is terminated.',
  },
  {
    key: 'pauseAfterFailures',
    type: 'integer',
    label: 'Pause After Failures',
    category: 'Machines',
    default: 5,
    min: 1,
    max: 1000,
    description:
      'A fleet whose machines failed to register this many times in a row is paused, with the reason, until an admin resumes it (drover fleet set NAME --resume).',
  },
  {
    key: 'interruptionsBeforeOnDemand',
    type: 'integer',
    label: 'Interruptions Before On-Demand',
    category: 'Spot',
    default: 2,
    min: 1,
    max: 100,
    description: 'A task interrupted this many times prefers on-demand fleets from then on.',
  },
];

export const scalerPlugin: EventPlugin = {
  name: SCALER_PLUGIN,
  description:
    "Launches fleets' machines when dispatchable work their workers may take appears, and stops idle members after their idle time (never a busy one).",
  defaultState: 'disabled',
  config,
  handlers: {
    onJobReleased: wakeScalers,
    onJobResumed: wakeScalers,
    onJobRequeued: wakeScalers,
    onJobFinished: wakeScalers,
    onWorkerIdle: wakeScalers,
    onWorkerStarted: wakeScalers,
    onWorkerStopped: wakeScalers,
    onHouseCleaning: wakeScalers,
  },
};
