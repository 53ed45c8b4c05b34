/**
 * Path mapping: rules that rewrite a path prefix per region and OS (Deadline's mapped
 * paths). The manager applies them when it hands a task to a worker, with the worker's
 * region and OS; a path no rule matches is returned unchanged.
 */

export const mappingOses = ['linux', 'darwin', 'win32'] as const;
export type MappingOs = (typeof mappingOses)[number];

export interface PathMapping {
  id: number;
  prefix: string;
  replacement: string;
  /** Only for workers in this region; '' = every region. */
  region: string;
  /** Only for workers on this OS; '' = every OS. */
  os: string;
  caseSensitive: boolean;
}

export interface MappingTarget {
  region: string;
  os: string;
}

/** The rules that apply to a target, longest prefix first (the most specific rule wins). */
export function rulesFor(rules: readonly PathMapping[], target: MappingTarget): PathMapping[] {
  return rules
    .filter(
      (r) => (r.region === '' || r.region === target.region) && (r.os === '' || r.os === target.os),
    )
    .sort((a, b) => b.prefix.length - a.prefix.length || a.id - b.id);
}

function startsWith(path: string, prefix: string, caseSensitive: boolean): boolean {
  return caseSensitive
    ? path.startsWith(prefix)
    : path.toLowerCase().startsWith(prefix.toLowerCase());
}

/**
 * Maps one path with rules already chosen by `rulesFor`. On Windows targets the rest of the
 * path takes backslashes; elsewhere forward slashes.
 */
export function mapPath(path: string, rules: readonly PathMapping[], os: string): string {
  for (const rule of rules) {
    if (!startsWith(path, rule.prefix, rule.caseSensitive)) continue;
    const rest = path.slice(rule.prefix.length);
    const fixed = os === 'win32' ? rest.replace(/\//g, '\\') : rest.replace(/\\/g, '/');
    return rule.replacement + fixed;
  }
  return path;
}

/**
 * Maps a command-line argument: the whole value, or the value after `=` in `--out=/gfs/x`
 * style arguments.
 */
export function mapArgument(arg: string, rules: readonly PathMapping[], os: string): string {
  const whole = mapPath(arg, rules, os);
  if (whole !== arg) return whole;
  const eq = arg.indexOf('=');
  if (eq < 0) return arg;
  const value = arg.slice(eq + 1);
  const mapped = mapPath(value, rules, os);
  return mapped === value ? arg : arg.slice(0, eq + 1) + mapped;
}

/** What a task carries that may hold paths; the shape of a task assignment's fields. */
export interface PathBearing {
  pluginInfo: Record<string, string | number | boolean | string[]>;
  environment: Record<string, string>;
  outputDirectories: string[];
  outputFilenames: string[];
}

/**
 * Maps every path a task carries for one worker: plugin settings (text values whole or
 * after `=`, lists element by element — command-line arguments), output directories and
 * filenames, and environment values.
 */
export function mapTaskPaths<T extends PathBearing>(
  task: T,
  rules: readonly PathMapping[],
  os: string,
): T {
  if (rules.length === 0) return task;
  const one = (v: string) => mapArgument(v, rules, os);
  const pluginInfo: PathBearing['pluginInfo'] = {};
  for (const [k, v] of Object.entries(task.pluginInfo)) {
    pluginInfo[k] = typeof v === 'string' ? one(v) : Array.isArray(v) ? v.map(one) : v;
  }
  return {
    ...task,
    pluginInfo,
    environment: Object.fromEntries(Object.entries(task.environment).map(([k, v]) => [k, one(v)])),
    outputDirectories: task.outputDirectories.map((d) => mapPath(d, rules, os)),
    outputFilenames: task.outputFilenames.map(one),
  };
}
