/** One measured figure: what `npm run bench -- --json` prints, one object per row. */
export interface Row {
  scenario: string;
  system: string;
  metric: string;
  value: number;
  unit: string;
}

/** The p-th percentile (0–100) of `values` (nearest rank); NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

function formatValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 0.1 || abs === 0 ? 2 : 3;
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** The rows as a Markdown table (what BENCHMARKS.md shows). */
export function formatTable(rows: readonly Row[]): string {
  const header = ['scenario', 'system', 'metric', 'value', 'unit'];
  const body = rows.map((r) => [r.scenario, r.system, r.metric, formatValue(r.value), r.unit]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w, i) => (i === 3 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`,
    ...body.map(line),
  ].join('\n');
}

/** Progress lines go to stderr so that `--json` output stays one JSON document. */
export function note(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}
