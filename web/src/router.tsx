/**
 * A small history router: the monitor has six pages, and the manager answers index.html for
 * any path that is not a file, so `/jobs/<id>` links can be shared and reloaded.
 */
import { useSyncExternalStore, type MouseEvent, type ReactNode } from 'react';

const changed = new Set<() => void>();
window.addEventListener('popstate', () => {
  for (const fn of changed) fn();
});

function subscribe(fn: () => void): () => void {
  changed.add(fn);
  return () => changed.delete(fn);
}

export function navigate(to: string): void {
  if (to === window.location.pathname + window.location.search) return;
  window.history.pushState(null, '', to);
  for (const fn of changed) fn();
}

/** The current path (without the query string). */
export function usePath(): string {
  return useSyncExternalStore(subscribe, () => window.location.pathname);
}

export function Link(props: {
  to: string;
  children: ReactNode;
  className?: string;
  title?: string;
}): ReactNode {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    // Let the browser open new tabs and windows as usual.
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={props.to} onClick={onClick} className={props.className} title={props.title}>
      {props.children}
    </a>
  );
}
