/**
 * Fixed SQL texts the store runs as named prepared statements on PostgreSQL: parsed and
 * planned once per connection, then only bound and executed (`pg`'s `{ name, text, values }`
 * queries; the wrapping is in `src/store/postgres/index.ts`). Only texts registered here are
 * prepared — the hot path's fixed statements (`dispatch-sql.ts`), a bounded set — never SQL that
 * Kysely builds per call. A name stands for one text for the life of the process, so every
 * connection of the process may prepare it under that name.
 */
const names = new Map<string, string>();

/** Registers a fixed text (PostgreSQL placeholders) to be prepared by every connection. */
export function prepareOnce(text: string): void {
  if (!names.has(text)) names.set(text, `drover_${names.size + 1}`);
}

/** The prepared statement name of a registered text. */
export function preparedName(text: string): string | undefined {
  return names.get(text);
}
