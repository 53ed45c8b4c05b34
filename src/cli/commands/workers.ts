import { connect, type ConnectionOptions } from '../connection.js';
import { ago, printJson, printTable, terminalSafe } from '../output.js';

export interface WorkersOptions extends ConnectionOptions {
  json?: boolean;
}

export async function workers(o: WorkersOptions): Promise<void> {
  const list = await connect(o).listWorkers();
  if (o.json) return printJson(list);
  printTable(
    [
      'NAME',
      'REGION',
      'STATE',
      'POOLS',
      'GROUPS',
      'APPS',
      'SLOTS',
      'RUNNING',
      'CPUS',
      'OS',
      'LAST SEEN',
    ],
    list.map((w) => [
      w.name,
      w.region,
      w.state,
      w.pools.join(',') || '-',
      w.groups.join(',') || '-',
      // Plugins offered besides the built-in ones (`--apps-dir`).
      w.apps.join(',') || '-',
      String(w.slots),
      w.runningTasks.join(',') || '-',
      String(w.capabilities.cpus),
      w.capabilities.os,
      ago(w.lastSeenAt),
    ]),
  );
}

export async function setWorkerEnabled(
  name: string,
  enabled: boolean,
  o: WorkersOptions,
): Promise<void> {
  const w = await connect(o).setWorkerEnabled(name, enabled);
  if (o.json) return printJson(w);
  process.stdout.write(`${terminalSafe(w.name)}: ${w.state}\n`);
}

export async function limits(o: WorkersOptions): Promise<void> {
  const list = await connect(o).listLimits();
  if (o.json) return printJson(list);
  printTable(
    ['LIMIT', 'IN USE', 'MAX'],
    list.map((l) => [l.name, String(l.inUse), String(l.max)]),
  );
}

export async function setLimit(name: string, max: number, o: WorkersOptions): Promise<void> {
  await connect(o).setLimit(name, max);
  await limits(o);
}

export interface EventsOptions extends ConnectionOptions {
  json?: boolean;
  after?: number;
  limit?: number;
  type?: string;
  job?: string;
}

export async function events(o: EventsOptions): Promise<void> {
  const list = await connect(o).listEvents({
    ...(o.after !== undefined ? { after: o.after } : {}),
    ...(o.limit !== undefined ? { limit: o.limit } : {}),
    ...(o.type ? { type: o.type.split(',') } : {}),
    ...(o.job ? { job: o.job } : {}),
  });
  if (o.json) return printJson(list);
  printTable(
    ['SEQ', 'AT', 'TYPE', 'JOB', 'TASK', 'WORKER', 'DATA'],
    list.map((e) => [
      String(e.seq),
      new Date(e.at).toISOString(),
      e.type,
      e.jobId ?? '-',
      e.taskIndex === null ? '-' : String(e.taskIndex),
      e.worker ?? '-',
      JSON.stringify(e.data),
    ]),
  );
}
