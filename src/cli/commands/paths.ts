import { invalid } from '../../core/errors.js';
import { mappingOses, type MappingOs } from '../../core/path-mapping.js';
import { connect, type ConnectionOptions } from '../connection.js';
import { printJson, printTable } from '../output.js';

export interface PathsOptions extends ConnectionOptions {
  json?: boolean;
}

export async function pathsList(o: PathsOptions): Promise<void> {
  const rules = await connect(o).listPathMappings();
  if (o.json) return printJson(rules);
  printTable(
    ['ID', 'PREFIX', 'REPLACEMENT', 'REGION', 'OS', 'CASE'],
    rules.map((r) => [
      String(r.id),
      r.prefix,
      r.replacement,
      r.region || 'any',
      r.os || 'any',
      r.caseSensitive ? 'sensitive' : 'insensitive',
    ]),
  );
}

export interface PathsAddOptions extends PathsOptions {
  region?: string;
  os?: string;
  caseInsensitive?: boolean;
}

export async function pathsAdd(
  prefix: string,
  replacement: string,
  o: PathsAddOptions,
): Promise<void> {
  const rule = await connect(o).addPathMapping({
    prefix,
    replacement,
    ...(o.region ? { region: o.region } : {}),
    ...(o.os ? { os: osOption(o.os) } : {}),
    caseSensitive: !o.caseInsensitive,
  });
  if (o.json) return printJson(rule);
  process.stdout.write(`added rule ${rule.id}: ${rule.prefix} → ${rule.replacement}\n`);
}

export async function pathsRemove(id: string, o: PathsOptions): Promise<void> {
  const n = Number(id);
  if (!Number.isInteger(n) || n < 1) throw invalid('id', `"${id}" is not a rule id`);
  await connect(o).removePathMapping(n);
  if (!o.json) process.stdout.write(`removed rule ${n}\n`);
}

export async function pathsMap(
  path: string,
  o: PathsOptions & { region: string; os?: string },
): Promise<void> {
  const mapped = await connect(o).mapPath(path, o.region, o.os ? osOption(o.os) : undefined);
  if (o.json) return printJson({ path: mapped });
  process.stdout.write(`${mapped}\n`);
}

/** `--os`: one of the OSes path mapping knows. */
function osOption(os: string): MappingOs {
  const known = mappingOses as readonly string[];
  if (!known.includes(os)) throw invalid('--os', `must be one of ${mappingOses.join(', ')}`);
  return os as MappingOs;
}
