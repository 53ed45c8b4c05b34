import { invalid } from './errors.js';
import { absolutePathProblem } from './paths.js';
import { isCleanText } from './text.js';

/**
 * Event plugin configuration, modelled on Deadline's event plugin `.param` files: each
 * plugin declares typed entries (with label, category, default, description, bounds), the
 * manager validates values against them on save and hands plugins typed values.
 */

export const pluginStates = ['disabled', 'opt-in', 'global'] as const;
export type PluginState = (typeof pluginStates)[number];

export type ConfigValue = string | number | boolean;

interface EntryBase {
  key: string;
  label: string;
  category?: string;
  description?: string;
}
export type ConfigEntry = EntryBase &
  (
    | {
        /** `path`: blank, or an absolute path without `..` segments (see `absolutePathProblem`). */
        type: 'string' | 'multiline' | 'password' | 'path';
        default: string;
        maxLength?: number;
      }
    | { type: 'integer'; default: number; min: number; max: number }
    | { type: 'boolean'; default: boolean }
    | { type: 'enum'; default: string; items: readonly string[] }
  );

export type ConfigValues = Record<string, ConfigValue>;

/** Every entry at its default. */
export function defaultConfig(entries: readonly ConfigEntry[]): ConfigValues {
  return Object.fromEntries(entries.map((e) => [e.key, e.default]));
}

/**
 * Checks `changes` against the entries and returns the merged configuration. Text from a
 * command line (`"20"`, `"true"`) is accepted for integers and booleans. Throws
 * `invalid_input` naming `config.<key>` on the first bad value; nothing is half-applied.
 */
export function applyConfig(
  entries: readonly ConfigEntry[],
  current: ConfigValues,
  changes: Record<string, unknown>,
): ConfigValues {
  const out: ConfigValues = { ...defaultConfig(entries), ...current };
  for (const [key, raw] of Object.entries(changes)) {
    const entry = entries.find((e) => e.key === key);
    const field = `config.${key}`;
    if (!entry) {
      throw invalid(
        field,
        `is not a setting of this plugin (settings: ${entries.map((e) => e.key).join(', ')})`,
      );
    }
    switch (entry.type) {
      case 'integer': {
        const n = typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : raw;
        if (typeof n !== 'number' || !Number.isInteger(n))
          throw invalid(field, 'must be a whole number');
        if (n < entry.min || n > entry.max)
          throw invalid(field, `must be from ${entry.min} to ${entry.max}`);
        out[key] = n;
        break;
      }
      case 'boolean': {
        const b =
          typeof raw === 'string' && /^(true|false)$/i.test(raw)
            ? raw.toLowerCase() === 'true'
            : raw;
        if (typeof b !== 'boolean') throw invalid(field, 'must be true or false');
        out[key] = b;
        break;
      }
      case 'enum': {
        if (typeof raw !== 'string' || !entry.items.includes(raw)) {
          throw invalid(field, `must be one of ${entry.items.join(', ')}`);
        }
        out[key] = raw;
        break;
      }
      default: {
        if (typeof raw !== 'string') throw invalid(field, 'must be text');
        if (!isCleanText(raw)) {
          throw invalid(field, 'must be valid Unicode without NUL characters');
        }
        const max = entry.maxLength ?? (entry.type === 'multiline' ? 65536 : 4096);
        if (raw.length > max) throw invalid(field, `must be at most ${max} characters`);
        if (entry.type !== 'multiline' && /[\r\n]/.test(raw))
          throw invalid(field, 'must be one line');
        // A path setting is handed to workers (gfs-sync's `gfsRoot`): relative or climbing
        // with `..` it would point somewhere else on every node. Blank means "not set".
        if (entry.type === 'path' && raw !== '') {
          const problem = absolutePathProblem(raw);
          if (problem) throw invalid(field, `must be an absolute path: ${problem}`);
        }
        out[key] = raw;
      }
    }
  }
  return out;
}

/** The configuration as shown to users: passwords are never sent back. */
export function redactConfig(entries: readonly ConfigEntry[], values: ConfigValues): ConfigValues {
  const out = { ...values };
  for (const e of entries) if (e.type === 'password' && out[e.key]) out[e.key] = '********';
  return out;
}

/** An event plugin as the API shows it. */
export interface PluginView {
  name: string;
  description: string;
  state: PluginState;
  /** Current values; passwords are masked. */
  config: ConfigValues;
  schema: readonly ConfigEntry[];
  /** The events it handles (`onJobSubmitted`, …). */
  handlers: string[];
}
