import type { ReactNode } from 'react';

/** The Versions page. */
export function VersionsPage(): ReactNode {
  return (
    <section>
      <h1>Versions</h1>
    </section>
  );
}
