import type { Kysely } from 'kysely';
import type { Dialect } from '../sql/dialect.js';
import * as m001 from './001-initial.js';
import * as m002 from './002-plugins-and-paths.js';
import * as m003 from './003-leader-leases.js';
import * as m004 from './004-tokens.js';
import * as m005 from './005-worker-token-scope.js';
import * as m006 from './006-log-batches.js';
import * as m007 from './007-bounded-submissions.js';
import * as m008 from './008-unique-token-names.js';
import * as m009 from './009-resume-on-dependencies.js';
import * as m010 from './010-log-head-and-tail.js';
import * as m011 from './011-event-publication.js';
import * as m012 from './012-fleets.js';
import * as m013 from './013-versions.js';
import * as m014 from './014-job-counters.js';
import * as m015 from './015-worker-apps.js';

export interface Migration {
  /** Numbered, applied in order, never edited once released: add a new one instead. */
  id: number;
  name: string;
  up(db: Kysely<unknown>, dialect: Dialect): Promise<void>;
}

export const migrations: readonly Migration[] = [
  { id: 1, name: 'initial', up: m001.up },
  { id: 2, name: 'plugins-and-paths', up: m002.up },
  { id: 3, name: 'leader-leases', up: m003.up },
  { id: 4, name: 'tokens', up: m004.up },
  { id: 5, name: 'worker-token-scope', up: m005.up },
  { id: 6, name: 'log-batches', up: m006.up },
  { id: 7, name: 'bounded-submissions', up: m007.up },
  { id: 8, name: 'unique-token-names', up: m008.up },
  { id: 9, name: 'resume-on-dependencies', up: m009.up },
  { id: 10, name: 'log-head-and-tail', up: m010.up },
  { id: 11, name: 'event-publication', up: m011.up },
  { id: 12, name: 'fleets', up: m012.up },
  { id: 13, name: 'versions', up: m013.up },
  { id: 14, name: 'job-counters', up: m014.up },
  { id: 15, name: 'worker-apps', up: m015.up },
];
