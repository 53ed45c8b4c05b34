import type { EventPlugin } from '../plugin.js';
import { gfsSyncPlugin } from './gfs-sync/index.js';
import { webhookPlugin } from './webhook/index.js';
import { scalerPlugin } from './scaler/index.js';
import { publishPlugin } from './publish/index.js';

/** The event plugins that ship with Drover. */
export const builtinPlugins: readonly EventPlugin[] = [
  gfsSyncPlugin,
  publishPlugin,
  scalerPlugin,
  webhookPlugin,
];
