import { runAutoscaleDemo, type AutoscaleFigures } from '../demo/autoscale.js';
import { CommandFailed } from '../errors.js';
import { printJson } from '../output.js';

export interface AutoscaleDemoCommandOptions {
  tasks: number;
  taskSeconds: number;
  max: number;
  idleShutdown: number;
  json?: boolean;
}

function report(f: AutoscaleFigures): string {
  const idleGoalMs = (f.idleShutdownS + 2) * 1000;
  const worstIdle = Math.max(0, ...f.idleStopMs);
  const mark = (ok: boolean) => (ok ? 'ok' : 'MISSED');
  return [
    `autoscale demo: ${f.tasks} tasks, local fleet (max ${f.target}), no worker at submission`,
    `  first task rendering      ${(f.firstTaskMs / 1000).toFixed(2)} s after submission (goal < 5 s: ${mark(f.firstTaskMs < 5000)})`,
    `  target ${f.target} reached          ${(f.targetReachedMs / 1000).toFixed(2)} s after submission`,
    `  idle workers stopped      ${f.idleStopMs.length}, each ${f.idleStopMs.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s after its last task (goal ≤ idle ${f.idleShutdownS} s + 2 s: ${mark(worstIdle <= idleGoalMs)})`,
    `  busy workers stopped      ${f.busyStopped} (goal 0: ${mark(f.busyStopped === 0)})`,
    `  launches / decided        ${f.launchedMachines} / ${f.decidedLaunches}`,
    `  cost accounted            ${f.costHours.toFixed(5)} (${f.machineHours.toFixed(5)} machine-hours at ${f.costPerHour}/h)`,
    `  whole run                 ${(f.totalMs / 1000).toFixed(1)} s`,
  ].join('\n');
}

/** `drover demo autoscale`: a fleet brings workers up for a job and stops them after it. */
export async function demoAutoscale(o: AutoscaleDemoCommandOptions): Promise<void> {
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const figures = await runAutoscaleDemo({
      tasks: o.tasks,
      taskSeconds: o.taskSeconds,
      max: o.max,
      idleShutdownS: o.idleShutdown,
      costPerHour: 0.5,
      signal: abort.signal,
      ...(o.json ? {} : { log: (line: string) => process.stderr.write(`${line}\n`) }),
    });
    if (o.json) return printJson(figures);
    process.stdout.write(`${report(figures)}\n`);
  } catch (err) {
    if (abort.signal.aborted)
      throw new CommandFailed('interrupted; the demo farm was stopped', 130);
    throw err;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
