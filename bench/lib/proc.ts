import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux we run). */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / TICKS_PER_SECOND;
}

/** Resident set size in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** Samples a process's CPU use over a window and its largest RSS seen in it. */
export class ProcessSampler {
  private readonly startCpu: number;
  private readonly startAt = performance.now();
  private peakRss = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    this.startCpu = cpuSeconds(pid);
    this.sample();
    this.timer = setInterval(() => this.sample(), 500);
  }

  private sample(): void {
    try {
      this.peakRss = Math.max(this.peakRss, rssBytes(this.pid));
    } catch {
      // The process ended; the figures so far stand.
    }
  }

  /** CPU % of one core over the window, and the peak RSS in MB. */
  stop(): { cpuPercent: number; rssMb: number } {
    clearInterval(this.timer);
    this.sample();
    const seconds = (performance.now() - this.startAt) / 1000;
    const cpu = cpuSeconds(this.pid) - this.startCpu;
    return { cpuPercent: (100 * cpu) / seconds, rssMb: this.peakRss / (1024 * 1024) };
  }
}
