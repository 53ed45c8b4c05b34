/** Small pieces every page uses: state badges, progress bars, a page header. */
import type { ReactNode } from 'react';

/** A job, task or worker state as a coloured badge (`state-<name>` in styles.css). */
export function StateBadge(props: { state: string; title?: string }): ReactNode {
  return (
    <span className={`badge state-${props.state}`} title={props.title}>
      {props.state}
    </span>
  );
}

/**
 * A progress bar: the completed share in green, failed in red, rendering striped; the label
 * is the completed percentage.
 */
export function Progress(props: {
  done: number;
  total: number;
  rendering?: number;
  failed?: number;
}): ReactNode {
  const { done, total } = props;
  const pct = (n: number) => (total > 0 ? (n / total) * 100 : 0);
  const label = total > 0 ? `${Math.floor(pct(done))}%` : '–';
  return (
    <div className="progress" role="progressbar" aria-valuenow={Math.floor(pct(done))}>
      <div className="bar done" style={{ width: `${pct(done)}%` }} />
      <div className="bar rendering" style={{ width: `${pct(props.rendering ?? 0)}%` }} />
      <div className="bar failed" style={{ width: `${pct(props.failed ?? 0)}%` }} />
      <span className="label">{label}</span>
    </div>
  );
}

export function PageHeader(props: { title: ReactNode; children?: ReactNode }): ReactNode {
  return (
    <div className="page-header">
      <h1>{props.title}</h1>
      <div className="tools">{props.children}</div>
    </div>
  );
}

export function ErrorNote(props: { error: string | null }): ReactNode {
  return props.error ? (
    <div className="note error" role="alert">
      {props.error}
    </div>
  ) : null;
}
