/** Formatting shared by the pages: times, durations, frame lists. */

const two = (n: number) => String(n).padStart(2, '0');

/** `2024-05-01 14:03:07` in the browser's time zone (wranglers compare with logs). */
export function dateTime(ms: number | null): string {
  if (ms === null || ms === 0) return '';
  const d = new Date(ms);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export function time(ms: number): string {
  const d = new Date(ms);
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** `3 s`, `4 min`, `2 h 5 min`. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** How long ago, for heartbeats: `2 s ago`. */
export function ago(ms: number, now: number): string {
  return `${duration(now - ms)} ago`;
}

/** `1-4`, `7`, `1,3,5`: a task's frames, compactly. */
export function frameRange(frames: readonly number[]): string {
  if (frames.length === 0) return '';
  const first = frames[0]!;
  const last = frames[frames.length - 1]!;
  if (frames.length === 1) return String(first);
  const step = frames[1]! - first;
  const regular = frames.every((f, i) => f === first + i * step);
  if (regular && step === 1) return `${first}-${last}`;
  if (regular) return `${first}-${last}x${step}`;
  return frames.join(',');
}

export function percent(done: number, total: number): number {
  return total > 0 ? Math.round((done / total) * 1000) / 10 : 0;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
