import { fileURLToPath } from 'node:url';
import { makeDirectoriesSettingsSchema, parseAppSettings } from '../../../core/app-settings.js';
import type { AppPlugin } from '../types.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** `MakeDirectories`: the gfs-sync plugin's folder job (see `main.ts`). */
export const makeDirectoriesApp: AppPlugin = {
  name: 'MakeDirectories',
  processes(task) {
    const settings = parseAppSettings(makeDirectoriesSettingsSchema, task.pluginInfo);
    return [{ argv: [process.execPath, MAIN, JSON.stringify(settings)] }];
  },
  createParser() {
    return {
      line(text) {
        const m = /^Iteration (\d+)\/(\d+)\. Progress: (\d+)%/.exec(text);
        if (m) return { progress: Number(m[3]), status: `sync check ${m[1]}/${m[2]}` };
        if (text.startsWith('Error:')) return { error: text };
        return undefined;
      },
    };
  },
};
