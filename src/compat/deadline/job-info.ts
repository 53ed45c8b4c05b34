import { DroverError, invalid } from '../../core/errors.js';
import type { JobSubmissionInput } from '../../core/job-spec.js';
import { isCleanText } from '../../core/text.js';

/**
 * Deadline's JobInfo and PluginInfo → a Drover submission: the one mapping table.
 *
 * Clients send values as JSON strings, numbers and booleans alike (`Priority: 50`,
 * `Priority: "50"`, `ResumeOnCompleteDependencies: true`), keys left empty (`Whitelist: ""`:
 * the default applies) and `null` for unset PluginInfo fields (left out). Keys Drover has no
 * field for are not refused: they are returned in `ignored` (the Web Service writes them to
 * the job's history) and the JobInfo and PluginInfo are kept verbatim on the job (see
 * `handlers.ts`), so a `GET` returns what was sent.
 *
 * A value that cannot be read (a `Priority` of `"high"`) is a 400 naming the Deadline key
 * (`JobInfo.Priority`), never a 5xx.
 */

export type InfoValue = string | number | boolean | null | undefined;
export type Info = Record<string, unknown>;

type Target = Record<string, unknown>;

/** How one JobInfo key is read into the submission. */
interface Mapping {
  /** The Drover field it fills (for error messages mapped back to the Deadline key). */
  field: keyof JobSubmissionInput;
  apply(value: unknown, into: Target, key: string): void;
}

/** Deadline's "one task for all frames" (`ChunkSize=2147483647`). */
export const ONE_TASK_CHUNK = 2147483647;
/** The largest chunk Drover's schema takes; a bigger one makes one task of every frame too. */
const MAX_CHUNK = 1_000_000;

/** A scalar as its text; `null`/`undefined`/`""` are "not sent" (the default applies). */
function scalar(value: unknown, key: string): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalid(key, 'must be a finite number');
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value !== 'string') throw invalid(key, 'must be a string, a number or a boolean');
  if (!isCleanText(value)) throw invalid(key, 'must be text without NUL or lone surrogates');
  const s = value.trim();
  return s === '' ? undefined : s;
}

function stringOf(value: unknown, key: string): string | undefined {
  return scalar(value, key);
}

function intOf(value: unknown, key: string): number | undefined {
  const s = scalar(value, key);
  if (s === undefined) return undefined;
  if (!/^-?\d{1,12}$/.test(s))
    throw invalid(key, `must be a whole number, not "${s.slice(0, 40)}"`);
  return Number(s);
}

function boolOf(value: unknown, key: string): boolean | undefined {
  const s = scalar(value, key);
  if (s === undefined) return undefined;
  if (/^(true|1|yes|on)$/i.test(s)) return true;
  if (/^(false|0|no|off)$/i.test(s)) return false;
  throw invalid(key, `must be true or false, not "${s.slice(0, 40)}"`);
}

/** A comma list (`"a,b"`) or a JSON list (`["a"]`); empty entries dropped. */
export function listOf(value: unknown, key: string): string[] | undefined {
  if (value === null || value === undefined) return undefined;
  const items = Array.isArray(value) ? value.map((v, i) => scalar(v, `${key}.${i}`)) : undefined;
  const raw = items ?? (scalar(value, key) ?? '').split(',');
  const list = raw.map((s) => (s ?? '').trim()).filter((s) => s !== '');
  return list.length > 0 ? list : undefined;
}

/** `KEY=VALUE` split at the first `=` (values may hold `=`). */
function keyValueOf(value: unknown, key: string): [string, string] | undefined {
  const s = scalar(value, key);
  if (s === undefined) return undefined;
  const at = s.indexOf('=');
  if (at <= 0) throw invalid(key, `must be KEY=VALUE, not "${s.slice(0, 40)}"`);
  return [s.slice(0, at).trim(), s.slice(at + 1)];
}

function set(field: keyof JobSubmissionInput, read: (v: unknown, key: string) => unknown): Mapping {
  return {
    field,
    apply(value, into, key) {
      const v = read(value, key);
      if (v !== undefined) into[field] = v;
    },
  };
}

function enumOf<T>(choices: Record<string, T>) {
  return (value: unknown, key: string): T | undefined => {
    const s = scalar(value, key);
    if (s === undefined) return undefined;
    const hit = Object.entries(choices).find(([k]) => k.toLowerCase() === s.toLowerCase());
    if (!hit) throw invalid(key, `must be one of ${Object.keys(choices).join(', ')}`);
    return hit[1];
  };
}

/** Deadline's plugin name → Drover's application plugin (other names are kept as sent). */
export function droverPlugin(deadlinePlugin: string): string {
  return /^(CommandLine|CommandScript)$/i.test(deadlinePlugin) ? 'CommandLine' : deadlinePlugin;
}

/**
 * The single-valued JobInfo keys Drover understands, key by key. Numbered keys
 * (`OutputDirectory0`, …) are in `numbered` below.
 */
export const jobInfoKeys: Record<string, Mapping> = {
  Plugin: set('plugin', (v, k) => {
    const s = stringOf(v, k);
    return s === undefined ? undefined : droverPlugin(s);
  }),
  Name: set('name', stringOf),
  BatchName: set('batchName', stringOf),
  UserName: set('user', stringOf),
  MachineName: set('machineName', stringOf),
  Department: set('department', stringOf),
  Comment: set('comment', stringOf),
  // Kept exactly as submitted (an integer `0` becomes `"0"`): validators split it again.
  Frames: set('frames', stringOf),
  ChunkSize: set('chunkSize', (v, k) => {
    const n = intOf(v, k);
    if (n === undefined) return undefined;
    if (n < 1) throw invalid(k, 'must be at least 1');
    // 2147483647 = one task for all frames; Drover's bound (1,000,000) is also its frame bound.
    return Math.min(n, MAX_CHUNK);
  }),
  Priority: set('priority', intOf),
  Pool: set('pool', stringOf),
  SecondaryPool: set('secondaryPool', stringOf),
  Group: set('group', stringOf),
  MachineLimit: set('machineLimit', intOf),
  Whitelist: set('allowList', listOf),
  Blacklist: set('denyList', listOf),
  LimitGroups: set('limits', listOf),
  JobDependencies: {
    field: 'dependencies',
    apply(value, into, key) {
      const list = listOf(value, key);
      if (list) into.dependencies = [...((into.dependencies as string[]) ?? []), ...list];
    },
  },
  IsFrameDependent: set('frameDependent', boolOf),
  ResumeOnFailedDependencies: set('resumeOnFailedDependencies', boolOf),
  ResumeOnDeletedDependencies: set('resumeOnDeletedDependencies', boolOf),
  // Deadline's Region names where the job belongs; "none"/"all" (Deadline's defaults) and an
  // empty value leave the job free to render in any region.
  Region: set('regions', (v, k) => {
    const s = stringOf(v, k);
    return s === undefined || /^(none|all)$/i.test(s) ? undefined : [s];
  }),
  InitialStatus: set('initialState', enumOf({ Active: 'queued', Suspended: 'suspended' })),
  OnJobComplete: set(
    'onComplete',
    enumOf({ Nothing: 'nothing', Archive: 'archive', Delete: 'delete' }),
  ),
  TaskTimeoutSeconds: set('taskTimeoutSeconds', intOf),
  TaskTimeoutMinutes: set('taskTimeoutSeconds', (v, k) => {
    const n = intOf(v, k);
    return n === undefined ? undefined : n * 60;
  }),
  FailureDetectionJobErrors: set('jobErrorLimit', intOf),
  // Deadline fails a task after N errors (0 = never); Drover counts the tries after the first.
  FailureDetectionTaskErrors: set('taskRetries', (v, k) => {
    const n = intOf(v, k);
    if (n === undefined) return undefined;
    if (n < 0) throw invalid(k, 'must be at least 0');
    return n === 0 ? 100 : Math.min(n - 1, 100);
  }),
  EventOptIns: set('eventOptIns', listOf),
};

/**
 * JobInfo keys accepted because Drover already behaves as they ask, with the value that
 * agrees; another value is listed as ignored.
 */
const agreeing: Record<string, (v: unknown, k: string) => boolean> = {
  // Drover releases a job when its dependencies complete.
  ResumeOnCompleteDependencies: (v, k) => boolOf(v, k) !== false,
  // One task at a time per worker slot is Drover's only mode.
  ConcurrentTasks: (v, k) => (intOf(v, k) ?? 1) === 1,
};

interface Numbered {
  pattern: RegExp;
  field: keyof JobSubmissionInput;
  /** Applies the values of every key of the family, in index order. */
  apply(values: { index: number; key: string; value: unknown }[], into: Target): void;
}

/** The ExtraInfoKeyValue key that publishes a job (see `publish` in `core/job-spec.ts`). */
export const PUBLISH_KEY = 'DroverPublish';

const numbered: Numbered[] = [
  {
    pattern: /^OutputDirectory(\d+)$/,
    field: 'outputDirectories',
    apply(values, into) {
      const dirs = values.map((e) => stringOf(e.value, e.key)).filter((s) => s !== undefined);
      if (dirs.length) into.outputDirectories = dirs;
    },
  },
  {
    pattern: /^OutputFilename(\d+)$/,
    field: 'outputFilenames',
    apply(values, into) {
      const files = values.map((e) => stringOf(e.value, e.key)).filter((s) => s !== undefined);
      if (files.length) into.outputFilenames = files;
    },
  },
  {
    pattern: /^JobDependency(\d+)$/,
    field: 'dependencies',
    apply(values, into) {
      const ids = values.map((e) => stringOf(e.value, e.key)).filter((s) => s !== undefined);
      if (ids.length) into.dependencies = [...((into.dependencies as string[]) ?? []), ...ids];
    },
  },
  {
    // ExtraInfo0…9 are kept under their own names (the job object's Ex0…Ex9).
    pattern: /^ExtraInfo([0-9])$/,
    field: 'extraInfo',
    apply(values, into) {
      const extra = (into.extraInfo ??= {}) as Record<string, string>;
      for (const e of values) {
        const s = stringOf(e.value, e.key);
        if (s !== undefined) extra[`ExtraInfo${e.index}`] = s;
      }
    },
  },
  {
    // `DroverPublish=<product>` publishes the render as that product's next version (the
    // native API's `publish`); it stays in the extra info too, so a GET shows what was sent.
    pattern: /^ExtraInfoKeyValue(\d+)$/,
    field: 'extraInfo',
    apply(values, into) {
      const extra = (into.extraInfo ??= {}) as Record<string, string>;
      for (const e of values) {
        const kv = keyValueOf(e.value, e.key);
        if (!kv) continue;
        extra[kv[0]] = kv[1];
        if (kv[0] === PUBLISH_KEY) into.publish = kv[1];
      }
    },
  },
  {
    pattern: /^EnvironmentKeyValue(\d+)$/,
    field: 'environment',
    apply(values, into) {
      const env = (into.environment ??= {}) as Record<string, string>;
      for (const e of values) {
        const kv = keyValueOf(e.value, e.key);
        if (kv) env[kv[0]] = kv[1];
      }
    },
  },
];

/** Deadline's CommandLine PluginInfo keys → Drover's CommandLine settings. */
export const commandLineKeys: Record<string, (v: unknown, key: string) => [string, unknown]> = {
  Executable: (v, k) => ['executable', stringOf(v, k)],
  Arguments: (v, k) => ['arguments', scalar(v, k) === undefined ? undefined : String(v)],
  StartupDirectory: (v, k) => ['workingDirectory', stringOf(v, k)],
  SingleFramesOnly: (v, k) => ['perFrame', boolOf(v, k)],
};

export interface MappedJob {
  /** The submission, before Drover's schema (which applies defaults and checks bounds). */
  submission: Record<string, unknown>;
  /** Keys sent that Drover does not act on (`JobInfo.Foo`, `PluginInfo.Shell`), sorted. */
  ignored: string[];
}

function objectOf(value: unknown, what: string): Info {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid(what, 'must be an object');
  return value as Info;
}

/** Most keys in one JobInfo or PluginInfo. */
const MAX_KEYS = 1000;

/**
 * JobInfo and PluginInfo are stored verbatim (and unknown keys written to the job's
 * history), so every key and text value, at any depth, must be text the store takes back
 * intact: no NUL (PostgreSQL refuses it), no lone surrogates; keys at most 256 characters.
 */
function checkStorable(value: unknown, where: string, depth = 0): void {
  if (depth > 8) throw invalid(where, 'is nested too deeply');
  if (typeof value === 'string') {
    if (!isCleanText(value)) throw invalid(where, 'must be text without NUL or lone surrogates');
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const entries = Object.entries(value);
  if (entries.length > MAX_KEYS) throw invalid(where, `at most ${MAX_KEYS} entries`);
  for (const [key, v] of entries) {
    const at = Array.isArray(value) ? `${where}.${key}` : `${where}.${key.slice(0, 64)}`;
    if (!Array.isArray(value) && (key.length > 256 || !isCleanText(key) || key.trim() === '')) {
      throw invalid(at, 'keys must be 1 to 256 characters of text without NUL');
    }
    checkStorable(v, at, depth + 1);
  }
}

/** Maps one job's JobInfo and PluginInfo. Throws a 400 naming the key at fault. */
export function mapJobInfo(jobInfoInput: unknown, pluginInfoInput: unknown): MappedJob {
  const jobInfo = objectOf(jobInfoInput, 'JobInfo');
  const pluginInfo = objectOf(pluginInfoInput, 'PluginInfo');
  checkStorable(jobInfo, 'JobInfo');
  checkStorable(pluginInfo, 'PluginInfo');
  const into: Target = {};
  const ignored: string[] = [];
  const families = new Map<Numbered, { index: number; key: string; value: unknown }[]>();

  for (const [key, value] of Object.entries(jobInfo)) {
    const where = `JobInfo.${key}`;
    const single = Object.hasOwn(jobInfoKeys, key) ? jobInfoKeys[key] : undefined;
    if (single) {
      single.apply(value, into, where);
      continue;
    }
    const agree = Object.hasOwn(agreeing, key) ? agreeing[key] : undefined;
    if (agree) {
      if (!agree(value, where)) ignored.push(where);
      continue;
    }
    const family = numbered.find((f) => f.pattern.test(key));
    if (family) {
      const index = Number(family.pattern.exec(key)![1]);
      const list = families.get(family) ?? [];
      list.push({ index, key: where, value });
      families.set(family, list);
      continue;
    }
    ignored.push(where);
  }
  for (const family of numbered) {
    const values = families.get(family);
    if (values)
      family.apply(
        [...values].sort((a, b) => a.index - b.index),
        into,
      );
  }
  if (into.plugin === undefined) throw invalid('JobInfo.Plugin', 'is required');

  // PluginInfo: CommandLine's keys are translated; another plugin gets its settings as sent
  // (unset fields, sent as null, left out) and its own schema judges them.
  const settings: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(pluginInfo)) {
    const where = `PluginInfo.${key}`;
    if (into.plugin === 'CommandLine') {
      const read = Object.hasOwn(commandLineKeys, key) ? commandLineKeys[key] : undefined;
      if (!read) {
        ignored.push(where);
        continue;
      }
      const [name, v] = read(value, where);
      if (v !== undefined) settings[name] = v;
    } else if (value !== null && value !== undefined) {
      settings[key] = value;
    }
  }
  into.pluginInfo = settings;
  return { submission: into, ignored: ignored.sort() };
}

/** The Deadline key a Drover field came from, for errors found by Drover's own schema. */
export function deadlineKeyOf(field: string): string | undefined {
  const [head, ...rest] = field.split('.');
  if (head === 'pluginInfo') {
    const setting = rest[0];
    const key = Object.entries(commandLineKeys).find(
      ([k, read]) => read('x', k)[0] === setting,
    )?.[0];
    return `PluginInfo.${key ?? setting ?? ''}`.replace(/\.$/, '');
  }
  for (const [key, m] of Object.entries(jobInfoKeys)) if (m.field === head) return `JobInfo.${key}`;
  const family = numbered.find((f) => f.field === head);
  if (family) {
    const name = family.pattern.source.replace(/^\^|\(\\d\+\)\$|\(\[0-9\]\)\$/g, '');
    return `JobInfo.${name}${rest[0] && /^\d+$/.test(rest[0]) ? rest[0] : ''}`;
  }
  return undefined;
}

/** Re-throws a Drover validation error under the Deadline key the field came from. */
export function inDeadlineTerms(err: unknown): unknown {
  if (!(err instanceof DroverError) || err.code !== 'invalid_input' || !err.field) return err;
  const key = deadlineKeyOf(err.field);
  if (!key) return err;
  const message = err.message.startsWith(`${err.field}: `)
    ? err.message.slice(err.field.length + 2)
    : err.message;
  return invalid(key, message);
}
