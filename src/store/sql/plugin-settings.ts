import type { Kysely } from 'kysely';
import type { ConfigValues, PluginState } from '../../core/plugin-config.js';
import type { PluginSettings } from '../contract.js';
import { num } from './rows.js';
import type { Database } from './schema.js';

/** Event plugins' saved states and configurations, by name. */
export async function list(db: Kysely<Database>): Promise<PluginSettings[]> {
  const rows = await db.selectFrom('plugin_settings').selectAll().orderBy('name').execute();
  return rows.map((r) => ({
    name: r.name,
    state: r.state as PluginState,
    config: JSON.parse(r.config) as ConfigValues,
    updatedAt: num(r.updated_at),
  }));
}

/** Saves one plugin's state and configuration in one statement (new or replacing). */
export async function save(
  db: Kysely<Database>,
  now: number,
  settings: Omit<PluginSettings, 'updatedAt'>,
): Promise<PluginSettings> {
  const values = {
    state: settings.state,
    config: JSON.stringify(settings.config),
    updated_at: now,
  };
  await db
    .insertInto('plugin_settings')
    .values({ name: settings.name, ...values })
    .onConflict((oc) => oc.column('name').doUpdateSet(values))
    .execute();
  return { ...settings, updatedAt: now };
}
