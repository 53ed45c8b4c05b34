import type { ReactNode } from 'react';

/** The Fleets page. */
export function FleetsPage(): ReactNode {
  return (
    <section>
      <h1>Fleets</h1>
    </section>
  );
}
