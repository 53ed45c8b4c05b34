import { sql, type Kysely } from 'kysely';
import { migrations } from '../migrations/index.js';
import type { Dialect } from './dialect.js';

export interface MigrationStatus {
  id: number;
  name: string;
  appliedAt: number | null;
}

async function ensureTable(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('drover_migrations')
    .ifNotExists()
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('applied_at', 'bigint', (c) => c.notNull())
    .execute();
}

/**
 * Applies pending numbered migrations, each in its own transaction; returns their ids. On
 * PostgreSQL several managers may start at once against one database: a session advisory
 * lock makes them migrate one after the other (the later ones find nothing left to do).
 */
export async function migrate(db: Kysely<unknown>, dialect: Dialect): Promise<number[]> {
  if (dialect !== 'postgres') return migrateNow(db, dialect);
  return db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK})`.execute(conn);
    try {
      return await migrateNow(conn, dialect);
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK})`.execute(conn);
    }
  });
}

/** The advisory lock key migrations run under (any constant; "drover" in ASCII). */
const MIGRATION_LOCK = 0x64726f766572;

async function migrateNow(db: Kysely<unknown>, dialect: Dialect): Promise<number[]> {
  await ensureTable(db);
  const applied = new Set(
    (await migrationStatus(db)).filter((m) => m.appliedAt !== null).map((m) => m.id),
  );
  const done: number[] = [];
  for (const m of migrations) {
    if (applied.has(m.id)) continue;
    await db.transaction().execute(async (trx) => {
      await m.up(trx, dialect);
      await sql`insert into drover_migrations (id, name, applied_at) values (${m.id}, ${m.name}, ${Date.now()})`.execute(
        trx,
      );
    });
    done.push(m.id);
  }
  return done;
}

export async function migrationStatus(db: Kysely<unknown>): Promise<MigrationStatus[]> {
  await ensureTable(db);
  const rows = await sql<{
    id: number;
    applied_at: number | string;
  }>`select id, applied_at from drover_migrations`.execute(db);
  const applied = new Map(rows.rows.map((r) => [Number(r.id), Number(r.applied_at)]));
  return migrations.map((m) => ({ id: m.id, name: m.name, appliedAt: applied.get(m.id) ?? null }));
}
