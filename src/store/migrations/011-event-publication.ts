import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../sql/dialect.js';

/**
 * The event log without a writers' lock (`src/store/sql/events.ts` tells the design).
 *
 * PostgreSQL: each event gets an insertion `id` (the primary key, from the sequence that made
 * `seq` until now) and the id of the transaction that wrote it (`xid`, `pg_current_xact_id()`
 * by default). `seq`, the consumers' cursor, becomes nullable: a publisher
 * (`drover_publish_events`) gives it to the events of finished transactions. Existing rows
 * are published already: their `id` is their `seq`, their `xid` is null. One UPDATE rewrites
 * every row once, so the migration takes as long as the log is big.
 *
 * SQLite keeps `seq` as it is (one writer at a time: insertion order is commit order); `id`
 * is a virtual column equal to `seq`, so code that wants insertion order says `id` on both.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect === 'sqlite') {
    await sql`alter table events add column id integer generated always as (seq) virtual`.execute(
      db,
    );
    return;
  }
  for (const statement of [
    sql`alter table events add column id bigint`,
    sql`update events set id = seq`,
    sql`alter table events alter column seq drop default`,
    sql`alter sequence events_seq_seq owned by events.id`,
    sql`alter sequence events_seq_seq rename to events_id_seq`,
    sql`alter table events alter column id set default nextval('events_id_seq')`,
    sql`alter table events alter column id set not null`,
    sql`alter table events drop constraint events_pkey`,
    sql`alter table events add constraint events_pkey primary key (id)`,
    sql`alter table events alter column seq drop not null`,
    // Added without a default, then given one: a volatile default on ADD COLUMN would give
    // every existing row this migration's transaction id.
    sql`alter table events add column xid xid8`,
    sql`alter table events alter column xid set default pg_current_xact_id()`,
    // Readers: published events by seq. Unique: a seq is given once.
    sql`create unique index events_published on events (seq) where seq is not null`,
    // The publisher: only the unpublished events, a handful between two rounds.
    sql`create index events_unpublished on events (xid, id) where seq is null`,
    sql.raw(PUBLISH_FUNCTION),
  ]) {
    await statement.execute(db);
  }
}

/**
 * One publication round (see `events.ts`). Returns how many events it published, or -1 when
 * another round holds the lock (the caller skips: that round publishes).
 *
 * The horizon: the oldest transaction id still running *in this database*, or the snapshot's
 * xmax when none is. `pg_snapshot_xmin(pg_current_snapshot())` would be simpler but counts
 * every database on the server: any busy neighbour's transactions would delay our events.
 * `pg_stat_activity.backend_xid` is read live from each backend (and is shown to any role);
 * the xmax is taken first, so a transaction that takes its xid during the scan is above it
 * anyway. 32-bit xids are widened against the xmax (running ones are within 2^31 of it).
 *
 * Each statement of a VOLATILE plpgsql function takes a fresh snapshot under READ COMMITTED,
 * so the UPDATE sees everything the previous round (whose lock this one waited out) did and
 * every transaction below the horizon. `e.seq is null` is checked again on the row's newest
 * version, a second guard against giving an event two numbers. 0x44524f564552 is "DROVER"
 * in hex, the key the old writers' lock used.
 */
const PUBLISH_FUNCTION = `
create function drover_publish_events(max_transactions integer) returns integer
language plpgsql volatile as $$
declare
  next8 bigint;
  horizon xid8;
  published integer;
begin
  if not pg_try_advisory_xact_lock(${0x44524f564552}) then
    return -1;
  end if;
  next8 := pg_snapshot_xmax(pg_current_snapshot())::text::bigint;
  select least(next8, min(next8 - ((next8 % 4294967296) - x + 4294967296) % 4294967296))
    ::text::xid8
  into horizon
  from (
    select backend_xid::text::bigint as x from pg_stat_activity
    where datname = current_database() and backend_xid is not null
    union all
    select transaction::text::bigint from pg_prepared_xacts where database = current_database()
  ) running;
  with pending as (
    select id, xid from events where seq is null
  ),
  barrier as (
    -- Committed, but an older transaction still runs: nothing that wrote its events after
    -- these is published before them.
    select coalesce(min(id), 9223372036854775807) as b from pending where xid >= horizon
  ),
  ready as (
    select xid, min(id) as first
    from pending where xid < horizon
    group by xid
    having min(id) < (select b from barrier)
    order by first
    limit max_transactions
  ),
  numbered as (
    select p.id, row_number() over (order by r.first, p.id) as n
    from pending p join ready r on r.xid = p.xid
  )
  update events e
  set seq = (select coalesce(max(seq), 0) from events where seq is not null) + numbered.n
  from numbered
  where e.id = numbered.id and e.seq is null;
  get diagnostics published = row_count;
  return published;
end
$$`;
