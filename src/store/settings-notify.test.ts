import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import { TestDatabases, withPostgres } from './conformance/postgres-databases.js';
import { SETTINGS_CHANNEL, type Store } from './contract.js';
import { openPostgresStore } from './postgres/index.js';
import { openSqliteStore } from './sqlite/index.js';

/**
 * Every change to a setting managers keep in memory — a plugin's settings, a path mapping, a
 * limit, a token — is followed by a notification on `SETTINGS_CHANNEL`, heard by every
 * process sharing the store (on PostgreSQL: by a second store on the same database, as
 * another manager would be). Managers re-read their settings when they hear it.
 */

interface Pair {
  /** Where the change is made. */
  writer: Store;
  /** Who must hear of it (the writer itself on SQLite: one process, one store). */
  listener: Store;
  close(): Promise<void>;
}

function suite(name: string, open: () => Promise<Pair>): void {
  describe(name, () => {
    let pair: Pair;
    let heard: string[] = [];
    let stop: () => void = () => undefined;
    afterEach(async () => {
      stop();
      await pair.close();
    });

    async function after(what: string, change: () => Promise<unknown>): Promise<void> {
      heard = [];
      await change();
      const deadline = Date.now() + 5_000;
      while (!heard.includes(SETTINGS_CHANNEL)) {
        if (Date.now() > deadline) throw new Error(`no settings notification after ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }

    it('notifies the settings channel after each change to plugin settings, path mappings, limits and tokens', async () => {
      pair = await open();
      stop = pair.listener.onNotify((channel) => heard.push(channel));
      // The PostgreSQL listener connects on the first `onNotify`: wait until it hears.
      const ready = Date.now() + 5_000;
      while (!heard.includes('ready')) {
        await pair.writer.notify('ready');
        if (Date.now() > ready) throw new Error('the listener never heard anything');
        await new Promise((r) => setTimeout(r, 50));
      }
      const w = pair.writer;
      await after('a plugin state', () =>
        w.savePluginSettings({ name: 'gfs-sync', state: 'global', config: {} }),
      );
      let id = 0;
      await after('a new path mapping', async () => {
        id = (
          await w.addPathMapping({
            prefix: '/gfs/',
            replacement: '/mnt/a/',
            region: 'a',
            os: '',
            caseSensitive: true,
          })
        ).id;
      });
      await after('a removed path mapping', () => w.removePathMapping(id));
      await after('a limit', () => w.setLimit('nuke', 2));
      let token = '';
      await after('a new token', async () => {
        token = (await w.createToken({ name: 'alice', role: 'user', hash: 'a'.repeat(64) })).id;
      });
      await after('a revoked token', () => w.revokeToken(token));
    });
  });
}

suite('settings notifications: sqlite', async () => {
  const store = await openSqliteStore(join(mkdtempSync(join(tmpdir(), 'drover-notify-')), 'db'));
  return { writer: store, listener: store, close: () => store.close() };
});

await withPostgres('settings notifications: postgres', () => {
  const dbs = new TestDatabases();
  beforeAll(() => dbs.prepareTemplate(), 60_000);
  afterAll(() => dbs.dropAll(), 60_000);
  suite('settings notifications: postgres', async () => {
    const url = await dbs.clone();
    const writer = await openPostgresStore(url);
    const listener = await openPostgresStore(url);
    return {
      writer,
      listener,
      close: async () => {
        await writer.close();
        await listener.close();
      },
    };
  });
});
