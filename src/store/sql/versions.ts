import { sql, type Kysely, type Selectable, type Updateable } from 'kysely';
import { conflict, notFound } from '../../core/errors.js';
import {
  canReview,
  versionName,
  type Product,
  type Version,
  type VersionStatus,
} from '../../core/versions.js';
import { MAX_PAGE } from '../contract.js';
import type {
  NewVersion,
  VersionChanges,
  VersionEventType,
  VersionQuery,
  VersionStore,
} from '../version-contract.js';
import { forUpdate } from './dialect.js';
import { recordEvent } from './events.js';
import { newJobId } from './ids.js';
import type { StoreKit } from './kit.js';
import { json, num } from './rows.js';
import type { Database } from './schema.js';
import type { VersionsTable } from './schema-versions.js';
import { isUniqueViolation } from './transient.js';

function versionFromRow(row: Selectable<VersionsTable>): Version {
  const number = num(row.number);
  return {
    id: row.id,
    product: row.product,
    number,
    name: versionName(number),
    status: row.status as VersionStatus,
    jobId: row.job_id,
    reviewJobId: row.review_job_id,
    submittedBy: row.submitted_by,
    submittedAt: num(row.submitted_at),
    comment: row.comment,
    folder: row.folder,
    representations: json(row.representations),
    missingFrames: json(row.missing_frames),
    thumbnail: row.thumbnail,
    movie: row.movie,
    scene: row.scene === null ? null : json(row.scene),
    error: row.error,
    reviewedBy: row.reviewed_by,
    reviewedAt: row.reviewed_at === null ? null : num(row.reviewed_at),
    reviewComment: row.review_comment,
    updatedAt: num(row.updated_at),
  };
}

/** What every version event carries, so a follower needs no second request. */
function eventData(v: Version): Record<string, unknown> {
  return {
    versionId: v.id,
    product: v.product,
    version: v.name,
    number: v.number,
    status: v.status,
    folder: v.folder,
    ...(v.error ? { error: v.error } : {}),
  };
}

/** Products and versions on SQL (see `version-contract.ts`). */
export class SqlVersionStore implements VersionStore {
  constructor(private readonly kit: StoreKit) {}

  async create(input: NewVersion): Promise<Version> {
    try {
      return await this.kit.tx(async (db, now) => {
        // One statement advances the counter: concurrent allocations for one product wait
        // for each other's row lock (PostgreSQL) or run one at a time (SQLite), and each
        // reads the value its own update wrote.
        const counter = await db
          .insertInto('products')
          .values({ name: input.product, last_version: 1, created_at: now })
          .onConflict((oc) =>
            oc.column('name').doUpdateSet({ last_version: sql`products.last_version + 1` }),
          )
          .returning('last_version')
          .executeTakeFirstOrThrow();
        const number = num(counter.last_version);
        const folder = input.folderOf(number);
        const id = newJobId(now);
        await db
          .insertInto('versions')
          .values({
            id,
            product: input.product,
            number,
            status: 'rendering',
            job_id: input.jobId ?? null,
            review_job_id: null,
            submitted_by: input.submittedBy,
            submitted_at: now,
            comment: input.comment,
            folder,
            representations: '[]',
            missing_frames: '[]',
            thumbnail: null,
            movie: null,
            scene: input.scene ? JSON.stringify(input.scene) : null,
            error: '',
            reviewed_by: '',
            reviewed_at: null,
            review_comment: '',
            updated_at: now,
          })
          .execute();
        const v = await this.fetchIn(db, id);
        await recordEvent(db, now, {
          type: 'version.created',
          jobId: v.jobId,
          data: { ...eventData(v), submittedBy: v.submittedBy },
        });
        return v;
      });
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw conflict(
          'another version already has this folder: a version folder is never written twice',
        );
      }
      throw err;
    }
  }

  private async fetchIn(db: Kysely<Database>, id: string): Promise<Version> {
    const row = await db.selectFrom('versions').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(`version ${id}`);
    return versionFromRow(row);
  }

  async fetch(id: string): Promise<Version | undefined> {
    const row = await this.kit.db
      .selectFrom('versions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? versionFromRow(row) : undefined;
  }

  async fetchByJob(jobId: string): Promise<Version | undefined> {
    const row = await this.kit.db
      .selectFrom('versions')
      .selectAll()
      .where((eb) => eb.or([eb('job_id', '=', jobId), eb('review_job_id', '=', jobId)]))
      .executeTakeFirst();
    return row ? versionFromRow(row) : undefined;
  }

  async list(query: VersionQuery): Promise<Version[]> {
    let q = this.kit.db.selectFrom('versions').selectAll();
    if (query.product !== undefined) q = q.where('product', '=', query.product);
    if (!query.all) q = q.where('status', '=', 'approved');
    if (query.before !== undefined) q = q.where('number', '<', query.before);
    const rows = await q
      .orderBy('submitted_at', 'desc')
      .orderBy('number', 'desc')
      .limit(Math.min(query.limit ?? 100, MAX_PAGE))
      .execute();
    return rows.map(versionFromRow);
  }

  async listProducts(options: { prefix?: string; limit?: number } = {}): Promise<Product[]> {
    let q = this.kit.db.selectFrom('products as p').select((eb) => [
      'p.name',
      'p.last_version',
      'p.created_at',
      eb
        .selectFrom('versions as v')
        .select((e) => e.fn.max('v.number').as('n'))
        .whereRef('v.product', '=', 'p.name')
        .where('v.status', '=', 'approved')
        .as('latest_approved'),
      eb
        .selectFrom('versions as v')
        .select((e) => e.fn.countAll().as('c'))
        .whereRef('v.product', '=', 'p.name')
        .as('version_count'),
    ]);
    if (options.prefix) {
      // Prefix by segment: `show/seq010` matches `show/seq010/…`, not `show/seq0100`.
      const prefix = options.prefix;
      q = q.where((eb) =>
        eb.or([
          eb('p.name', '=', prefix),
          eb(
            eb.fn('substr', ['p.name', sql.lit(1), sql.lit(prefix.length + 1)]),
            '=',
            `${prefix}/`,
          ),
        ]),
      );
    }
    const rows = await q
      .orderBy('p.name')
      .limit(Math.min(options.limit ?? MAX_PAGE, MAX_PAGE))
      .execute();
    return rows.map((r) => ({
      name: r.name,
      lastVersion: num(r.last_version),
      latestApproved:
        r.latest_approved === null || r.latest_approved === undefined
          ? null
          : num(r.latest_approved),
      versionCount: num((r.version_count ?? 0) as number),
      createdAt: num(r.created_at),
    }));
  }

  async latestApproved(product: string): Promise<Version | undefined> {
    const row = await this.kit.db
      .selectFrom('versions')
      .selectAll()
      .where('product', '=', product)
      .where('status', '=', 'approved')
      .orderBy('number', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? versionFromRow(row) : undefined;
  }

  async update(
    id: string,
    changes: VersionChanges,
    event: VersionEventType = 'version.updated',
  ): Promise<Version> {
    return this.kit.tx(
      async (db, now) => {
        const current = await forUpdate(
          db.selectFrom('versions').select('id').where('id', '=', id),
          this.kit.kind,
        ).executeTakeFirst();
        if (!current) throw notFound(`version ${id}`);
        const set: Updateable<VersionsTable> = {
          updated_at: now,
        };
        if (changes.status !== undefined) set.status = changes.status;
        if (changes.jobId !== undefined) set.job_id = changes.jobId;
        if (changes.reviewJobId !== undefined) set.review_job_id = changes.reviewJobId;
        if (changes.representations !== undefined) {
          set.representations = JSON.stringify(changes.representations);
        }
        if (changes.missingFrames !== undefined) {
          set.missing_frames = JSON.stringify(changes.missingFrames);
        }
        if (changes.thumbnail !== undefined) set.thumbnail = changes.thumbnail;
        if (changes.movie !== undefined) set.movie = changes.movie;
        if (changes.scene !== undefined) {
          set.scene = changes.scene === null ? null : JSON.stringify(changes.scene);
        }
        if (changes.error !== undefined) set.error = changes.error.slice(0, 4096);
        await db.updateTable('versions').set(set).where('id', '=', id).execute();
        const v = await this.fetchIn(db, id);
        await recordEvent(db, now, { type: event, jobId: v.jobId, data: eventData(v) });
        return v;
      },
      { wakes: false },
    );
  }

  async review(
    id: string,
    decision: 'approved' | 'rejected',
    by: string,
    comment: string,
  ): Promise<Version> {
    return this.kit.tx(
      async (db, now) => {
        const row = await forUpdate(
          db.selectFrom('versions').select(['id', 'status']).where('id', '=', id),
          this.kit.kind,
        ).executeTakeFirst();
        if (!row) throw notFound(`version ${id}`);
        const status = row.status as VersionStatus;
        if (!canReview(status)) {
          throw conflict(
            `version ${id} is ${status}: only a version pending review (or already reviewed) can be ${decision}`,
          );
        }
        await db
          .updateTable('versions')
          .set({
            status: decision,
            reviewed_by: by,
            reviewed_at: now,
            review_comment: comment,
            updated_at: now,
          })
          .where('id', '=', id)
          .execute();
        const v = await this.fetchIn(db, id);
        await recordEvent(db, now, {
          type: decision === 'approved' ? 'version.approved' : 'version.rejected',
          jobId: v.jobId,
          data: { ...eventData(v), by, comment },
        });
        return v;
      },
      { wakes: false },
    );
  }
}
