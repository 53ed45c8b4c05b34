/** The SQL dialects the store speaks. Dialect differences stay inside `src/store/`. */
export type Dialect = 'sqlite' | 'postgres';

/**
 * Row locks. PostgreSQL runs transactions side by side (several connections, several
 * managers), so a read that a later write depends on takes the row lock (`FOR UPDATE`).
 * SQLite has no `FOR UPDATE` and needs none: it runs one writing transaction at a time.
 */
export function forUpdate<QB extends { forUpdate(): QB }>(qb: QB, dialect: Dialect): QB {
  return dialect === 'postgres' ? qb.forUpdate() : qb;
}

/** `FOR UPDATE SKIP LOCKED` on PostgreSQL: concurrent claimers pass over each other's rows. */
export function forUpdateSkipLocked<QB extends { forUpdate(): QB; skipLocked(): QB }>(
  qb: QB,
  dialect: Dialect,
): QB {
  return dialect === 'postgres' ? qb.forUpdate().skipLocked() : qb;
}

/** `FOR SHARE` on PostgreSQL: the rows cannot change until the transaction ends. */
export function forShare<QB extends { forShare(): QB }>(qb: QB, dialect: Dialect): QB {
  return dialect === 'postgres' ? qb.forShare() : qb;
}
