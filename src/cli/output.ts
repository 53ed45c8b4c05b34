/** Plain-text output helpers for the CLI. Every read command also has `--json`. */

/**
 * Text from the farm made safe for a terminal. Job names, worker names, log output and
 * error messages come from other people and from render processes: an escape sequence in
 * them would recolour lines, move the cursor, rewrite what is on screen or set the terminal's
 * title. Every C0 control character (and ESC with it, so no sequence survives), DEL, every
 * C1 control and the Unicode direction overrides are shown as `\xNN` / `\uNNNN` instead.
 * `lines`: log text, where a line feed and a tab are what they are; in a table cell or a
 * one-line value they are escaped too (a newline would break the table). `--json` output
 * is never passed through this: JSON escapes control characters itself.
 */
export function terminalSafe(text: string, lines = false): string {
  return text.replace(UNSAFE, (c) => {
    if (lines && (c === '\n' || c === '\t')) return c;
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
// C0, DEL, C1; bidirectional embeddings/overrides/isolates (U+202A–U+202E, U+2066–U+2069).
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Columns padded to their widest cell; the last column is not padded. */
export function formatTable(headers: string[], unsafeRows: string[][]): string {
  const rows = unsafeRows.map((r) => r.map((cell) => terminalSafe(cell)));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function printTable(headers: string[], rows: string[][]): void {
  process.stdout.write(rows.length === 0 ? '(none)\n' : formatTable(headers, rows));
}

export function formatTime(ms: number | null): string {
  if (ms === null) return '-';
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function ago(ms: number, now = Date.now()): string {
  return `${formatDuration(now - ms)} ago`;
}
