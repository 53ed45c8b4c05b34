import { invalid } from '../../core/errors.js';
import { pluginStates, type PluginState, type PluginView } from '../../core/plugin-config.js';
import { connect, type ConnectionOptions } from '../connection.js';
import { printJson, printTable } from '../output.js';
import { keyValues } from './submit.js';

export interface PluginsOptions extends ConnectionOptions {
  json?: boolean;
}

export async function plugins(o: PluginsOptions): Promise<void> {
  const list = await connect(o).listPlugins();
  if (o.json) return printJson(list);
  printTable(
    ['PLUGIN', 'STATE', 'EVENTS', 'DESCRIPTION'],
    list.map((p) => [p.name, p.state, p.handlers.join(','), p.description]),
  );
}

function printPlugin(p: PluginView): void {
  process.stdout.write(`${p.name} (${p.state})\n${p.description}\n\n`);
  printTable(
    ['SETTING', 'VALUE', 'TYPE', 'DEFAULT', 'CATEGORY', 'DESCRIPTION'],
    p.schema.map((e) => [
      e.key,
      String(p.config[e.key]),
      e.type === 'integer'
        ? `integer ${e.min}..${e.max}`
        : e.type === 'enum'
          ? e.items.join('|')
          : e.type,
      String(e.default),
      e.category ?? '',
      e.description ?? '',
    ]),
  );
}

export async function pluginShow(name: string, o: PluginsOptions): Promise<void> {
  const p = await connect(o).getPlugin(name);
  if (o.json) return printJson(p);
  printPlugin(p);
}

export async function pluginSet(name: string, pairs: string[], o: PluginsOptions): Promise<void> {
  if (pairs.length === 0) throw invalid('settings', 'give at least one KEY=VALUE');
  const p = await connect(o).configurePlugin(name, { config: keyValues(pairs, 'settings') });
  if (o.json) return printJson(p);
  printPlugin(p);
}

export async function pluginState(name: string, state: string, o: PluginsOptions): Promise<void> {
  if (!(pluginStates as readonly string[]).includes(state)) {
    throw invalid('state', `"${state}" is not a plugin state (${pluginStates.join(', ')})`);
  }
  const p = await connect(o).configurePlugin(name, { state: state as PluginState });
  if (o.json) return printJson(p);
  process.stdout.write(`${p.name}: ${p.state}\n`);
}
