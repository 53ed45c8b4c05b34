import type { Command } from 'commander';
import { routes } from '../../api/routes.js';
import type { FleetChanges, FleetInput, FleetView } from '../../core/fleet.js';
import { invalid } from '../../core/errors.js';
import { connect, type ConnectionOptions } from '../connection.js';
import { formatTime, printJson, printTable, terminalSafe } from '../output.js';

interface FleetOptions extends ConnectionOptions {
  json?: boolean;
}

/** Options shared by `fleet create` and `fleet set` (strings as commander gives them). */
interface FleetFlags extends FleetOptions {
  provider?: string;
  region?: string;
  pools?: string;
  groups?: string;
  cpus?: string;
  memory?: string;
  gpus?: string;
  os?: string;
  slots?: string;
  min?: string;
  max?: string;
  standby?: string;
  scaleOutPerMinute?: string;
  idleShutdown?: string;
  costPerHour?: string;
  costCap?: string;
  capacity?: string;
  settings?: string;
  resume?: boolean;
}

function int(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw invalid(flag, `"${value}" is not a whole number`);
  return Number(value);
}

function num(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw invalid(flag, `"${value}" is not a number`);
  return n;
}

const list = (value: string | undefined) =>
  value === undefined
    ? undefined
    : value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);

function settingsOf(value: string | undefined): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error();
    return parsed as Record<string, unknown>;
  } catch {
    throw invalid('--settings', 'must be a JSON object, e.g. \'{"maxMachines": 4}\'');
  }
}

/** The fields the flags set, leaving out what was not given. */
function fields(o: FleetFlags): Record<string, unknown> {
  const capabilities =
    o.cpus !== undefined || o.memory !== undefined || o.gpus !== undefined || o.os !== undefined
      ? {
          ...(o.cpus !== undefined ? { cpus: int('--cpus', o.cpus) } : {}),
          ...(o.memory !== undefined ? { memoryMb: int('--memory', o.memory) } : {}),
          ...(o.gpus !== undefined ? { gpus: int('--gpus', o.gpus) } : {}),
          ...(o.os !== undefined ? { os: o.os } : {}),
        }
      : undefined;
  const out: Record<string, unknown> = {
    region: o.region,
    pools: list(o.pools),
    groups: list(o.groups),
    capabilities,
    slots: int('--slots', o.slots),
    min: int('--min', o.min),
    max: int('--max', o.max),
    standby: int('--standby', o.standby),
    scaleOutPerMinute: int('--scale-out-per-minute', o.scaleOutPerMinute),
    idleShutdownS: int('--idle-shutdown', o.idleShutdown),
    costPerHour: num('--cost-per-hour', o.costPerHour),
    costCapPerHour: num('--cost-cap', o.costCap),
    capacity: o.capacity,
    settings: settingsOf(o.settings),
  };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

function describe(f: FleetView): string[] {
  const d = f.status.decision;
  return [
    f.name,
    f.provider,
    f.region,
    `${f.min}/${f.max}`,
    String(f.status.running),
    String(f.status.booting),
    String(f.status.draining),
    d ? String(d.target) : '-',
    d ? String(d.demand) : '-',
    f.pausedReason ? `paused: ${f.pausedReason}` : (d?.reason ?? ''),
  ];
}

const HEADERS = [
  'NAME',
  'PROVIDER',
  'REGION',
  'MIN/MAX',
  'RUNNING',
  'BOOTING',
  'DRAINING',
  'TARGET',
  'DEMAND',
  'LAST DECISION',
];

export async function fleetList(o: FleetOptions): Promise<void> {
  const reply = await connect(o).call(routes.listFleets, {});
  if (o.json) return printJson(reply);
  printTable(HEADERS, reply.fleets.map(describe));
  process.stdout.write(`scaler: ${reply.scaler.state}\n`);
  for (const u of reply.unserved) {
    process.stdout.write(
      `job ${terminalSafe(u.jobId)}: ${u.tasks} task(s) no fleet may run: ${terminalSafe(u.reason)}\n`,
    );
  }
}

export async function fleetShow(name: string, o: FleetOptions): Promise<void> {
  const reply = await connect(o).call(routes.getFleet, { params: { name } });
  if (o.json) return printJson(reply);
  const f = reply.fleet;
  printTable(HEADERS, [describe(f)]);
  process.stdout.write(
    `pools ${f.pools.join(',') || '-'}  groups ${f.groups.join(',') || '-'}  slots ${f.slots}  standby ${f.standby}  idle shutdown ${f.idleShutdownS}s  ${f.capacity}` +
      `  cost ${f.costPerHour ?? '-'}/h (cap ${f.costCapPerHour ?? '-'}/h)  accounted ${f.status.costHours.toFixed(4)} over ${f.status.machineHours.toFixed(4)} machine-hours\n`,
  );
  printTable(
    ['MACHINE', 'WORKER', 'STATE', 'CAPACITY', 'LAUNCHED', 'REGISTERED', 'TERMINATED', 'FAILURE'],
    reply.machines.map((m) => [
      m.id,
      m.worker,
      m.state,
      m.capacity,
      formatTime(m.launchedAt),
      formatTime(m.registeredAt),
      formatTime(m.terminatedAt),
      m.failure ?? '',
    ]),
  );
}

export async function fleetCreate(name: string, o: FleetFlags): Promise<void> {
  if (!o.provider) throw invalid('--provider', 'is required (local, ec2)');
  if (o.max === undefined) throw invalid('--max', 'is required');
  const body = { name, provider: o.provider, ...fields(o) } as FleetInput;
  const reply = await connect(o).call(routes.createFleet, { body });
  if (o.json) return printJson(reply);
  process.stdout.write(`fleet ${reply.fleet.name} created\n`);
}

export async function fleetSet(name: string, o: FleetFlags): Promise<void> {
  const body = { ...fields(o), ...(o.resume ? { paused: false } : {}) } as FleetChanges;
  if (Object.keys(body).length === 0) throw invalid('options', 'give at least one change');
  const reply = await connect(o).call(routes.updateFleet, { params: { name }, body });
  if (o.json) return printJson(reply);
  process.stdout.write(`fleet ${reply.fleet.name} updated\n`);
}

export async function fleetDelete(name: string, o: FleetOptions): Promise<void> {
  await connect(o).call(routes.deleteFleet, { params: { name } });
  process.stdout.write(`fleet ${name} deleted\n`);
}

function definitionFlags(cmd: Command): Command {
  return cmd
    .option('--region <region>', 'the region its workers register in')
    .option('--pools <list>', 'pools its workers serve, in order, comma-separated')
    .option('--groups <list>', 'groups its workers belong to, comma-separated')
    .option('--cpus <n>', 'worker capabilities: CPUs')
    .option('--memory <mb>', 'worker capabilities: memory (MB)')
    .option('--gpus <n>', 'worker capabilities: GPUs')
    .option('--os <os>', 'worker capabilities: operating system')
    .option('--slots <n>', 'task slots per worker')
    .option('--min <n>', 'machines it always keeps')
    .option('--max <n>', 'machines it never exceeds')
    .option('--standby <n>', 'idle workers kept warm beyond the demand')
    .option('--scale-out-per-minute <n>', 'machines launched per minute at most')
    .option('--idle-shutdown <s>', 'seconds idle (since its last task) before a member is stopped')
    .option('--cost-per-hour <n>', 'cost of one machine per hour')
    .option('--cost-cap <n>', 'most cost per hour of the whole fleet')
    .option('--capacity <kind>', 'spot or on-demand')
    .option('--settings <json>', "the provider's settings, a JSON object");
}

/** Declares the fleets commands on `program`; `remote` adds --url/--token/--json. */
export function fleetCommands(
  program: Command,
  remote: (cmd: Command, json?: boolean) => Command,
): void {
  const fleet = program
    .command('fleet')
    .description('fleets: workers a provider starts and stops as work comes and goes (admin)');
  remote(fleet.command('list', { isDefault: true }).description('list fleets')).action(
    (o: FleetOptions) => fleetList(o),
  );
  remote(fleet.command('show').argument('<name>').description('a fleet and its machines')).action(
    (name: string, o: FleetOptions) => fleetShow(name, o),
  );
  remote(
    definitionFlags(
      fleet
        .command('create')
        .argument('<name>')
        .description('define a fleet')
        .option('--provider <kind>', 'local or ec2'),
    ),
  ).action((name: string, o: FleetFlags) => fleetCreate(name, o));
  remote(
    definitionFlags(
      fleet
        .command('set')
        .argument('<name>')
        .description('change a fleet')
        .option('--resume', 'resume a fleet the scaler paused'),
    ),
  ).action((name: string, o: FleetFlags) => fleetSet(name, o));
  remote(
    fleet.command('delete').argument('<name>').description('delete a fleet with no machine left'),
    false,
  ).action((name: string, o: FleetOptions) => fleetDelete(name, o));
}
