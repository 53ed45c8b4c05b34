/**
 * Versions: published renders by product, newest first, with their thumbnails and review
 * status; the selected version's review movie plays in the page, and a reviewer approves or
 * rejects it. Like the loader's view, unapproved versions are hidden until the switch shows
 * them. Reloads on `version.*` events (debounced) and on every reconnect of the live feed.
 */
import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { api, type Product, type Version, type VersionStatus } from '../api.js';
import { ErrorNote, PageHeader } from '../components/bits.js';
import { Debouncer, useFeedGeneration, useLiveEvents } from '../live.js';
import { useMe, type Me } from '../me.js';

/** Statuses a reviewer may decide on (as `canReview` in src/core/versions.ts). */
const REVIEWABLE: readonly VersionStatus[] = ['pending review', 'approved', 'rejected'];

/** An admin reviews any version; a user the versions it submitted; other roles none. */
function mayReview(me: Me | undefined, v: Version): boolean {
  if (!me || !REVIEWABLE.includes(v.status)) return false;
  return me.role === 'admin' || (me.role === 'user' && me.name === v.submittedBy);
}

function when(ms: number): string {
  return new Date(ms).toLocaleString();
}

/** A version status as a coloured badge (`state-pending-review` etc. in styles.css). */
function StatusBadge(props: { status: VersionStatus }): ReactNode {
  return <span className={`badge state-${props.status.replace(/\s+/g, '-')}`}>{props.status}</span>;
}

function frameSummary(v: Version): string {
  const seqs = v.representations.filter((r) => r.first !== null);
  if (seqs.length === 0) return `${v.representations.length} files`;
  return seqs.map((r) => `${r.pattern} ${r.frames}`).join(', ');
}

function VersionCard(props: {
  version: Version;
  selected: boolean;
  onSelect: () => void;
}): ReactNode {
  const { version: v, selected } = props;
  return (
    <button
      type="button"
      data-view
      className={`version-card${selected ? ' selected' : ''}`}
      onClick={props.onSelect}
      aria-pressed={selected}
      data-testid="version-card"
      data-version={`${v.product} ${v.name}`}
    >
      <div className="version-thumb">
        {v.thumbnail ? (
          <img src={api.versionMediaUrl(v.id, 'thumbnail', v.updatedAt)} alt={`${v.name}`} />
        ) : (
          <span className="muted">{v.status === 'rendering' ? 'rendering…' : 'no thumbnail'}</span>
        )}
      </div>
      <div className="version-meta">
        <b>{v.name}</b> <StatusBadge status={v.status} />
        <div className="muted version-product" title={v.product}>
          {v.product}
        </div>
        <div className="muted">
          {v.submittedBy} · {when(v.submittedAt)}
        </div>
      </div>
    </button>
  );
}

function VersionDetail(props: {
  version: Version;
  me: Me | undefined;
  onDecided: (v: Version) => void;
}): ReactNode {
  const { version: v, me } = props;
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const decide = (decision: 'approve' | 'reject') => {
    setBusy(true);
    setError(null);
    api
      .reviewVersion(v.id, decision, comment)
      .then(
        (updated) => {
          setComment('');
          props.onDecided(updated);
        },
        (err: unknown) => setError(err instanceof Error ? err.message : String(err)),
      )
      .finally(() => setBusy(false));
  };
  const canReview = mayReview(me, v);
  return (
    <section className="panel version-detail" aria-label={`Version ${v.product} ${v.name}`}>
      <div className="panel-head">
        <h2>
          {v.product} {v.name}
        </h2>
        <StatusBadge status={v.status} />
      </div>
      {v.movie ? (
        <video
          key={v.id}
          className="review-movie"
          data-testid="review-movie"
          controls
          preload="auto"
          playsInline
        >
          {/* H.264 first; browsers without it (some Linux builds) take the VP9 WebM. */}
          <source src={api.versionMediaUrl(v.id, 'movie', v.updatedAt)} type="video/mp4" />
          <source src={api.versionMediaUrl(v.id, 'webm', v.updatedAt)} type="video/webm" />
        </video>
      ) : (
        <p className="muted" data-testid="no-movie">
          {v.status === 'rendering'
            ? 'The review movie is made once the render has finished.'
            : 'No review movie yet.'}
        </p>
      )}
      {v.error && (
        <div className="note error" role="alert">
          {v.error}
        </div>
      )}
      <table className="kv">
        <tbody>
          <tr>
            <th>Status</th>
            <td data-testid="version-status">{v.status}</td>
          </tr>
          <tr>
            <th>Frames</th>
            <td>{frameSummary(v)}</td>
          </tr>
          {v.missingFrames.length > 0 && (
            <tr>
              <th>Missing</th>
              <td className="bad">{v.missingFrames.slice(0, 50).join(', ')}</td>
            </tr>
          )}
          <tr>
            <th>Submitted</th>
            <td>
              {v.submittedBy}, {when(v.submittedAt)}
            </td>
          </tr>
          {v.comment && (
            <tr>
              <th>Comment</th>
              <td>{v.comment}</td>
            </tr>
          )}
          <tr>
            <th>Folder</th>
            <td className="mono">{v.folder}</td>
          </tr>
          {v.scene && (
            <tr>
              <th>Scene</th>
              <td className="mono" title={`sha256 ${v.scene.sha256}`}>
                {v.scene.path}
              </td>
            </tr>
          )}
          {v.jobId && (
            <tr>
              <th>Job</th>
              <td>
                <a href={`/jobs/${v.jobId}`}>{v.jobId}</a>
              </td>
            </tr>
          )}
          {v.reviewedBy && (
            <tr>
              <th>Reviewed</th>
              <td>
                {v.reviewedBy}
                {v.reviewedAt !== null && `, ${when(v.reviewedAt)}`}
                {v.reviewComment && `: ${v.reviewComment}`}
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {canReview && (
        <div className="toolbar review-tools" role="toolbar" aria-label="Review">
          <input
            className="wide"
            aria-label="Review comment"
            placeholder="Comment (optional)"
            value={comment}
            maxLength={4096}
            onChange={(e) => setComment(e.target.value)}
          />
          <button
            className="primary"
            disabled={busy || v.status === 'approved'}
            onClick={() => decide('approve')}
          >
            Approve
          </button>
          <button
            className="danger"
            disabled={busy || v.status === 'rejected'}
            onClick={() => decide('reject')}
          >
            Reject
          </button>
        </div>
      )}
      <ErrorNote error={error} />
    </section>
  );
}

export function VersionsPage(): ReactNode {
  const me = useMe();
  const generation = useFeedGeneration();
  const [showAll, setShowAll] = useState(false);
  const [product, setProduct] = useState<string>('');
  const [products, setProducts] = useState<Product[]>([]);
  const [versions, setVersions] = useState<Version[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [selectedId, setSelectedId] = useState<string>();
  // The newest load wins: an older reply arriving late is dropped.
  const loadSeq = useRef(0);

  const load = useCallback(() => {
    const seq = ++loadSeq.current;
    Promise.all([
      api.listProducts(),
      api.listVersions({ product: product || undefined, all: showAll }),
    ]).then(
      ([p, v]) => {
        if (seq !== loadSeq.current) return;
        setProducts(p);
        setVersions(v);
        setLoaded(true);
        setError(null);
      },
      (err: unknown) => {
        if (seq === loadSeq.current) setError(err instanceof Error ? err.message : String(err));
      },
    );
  }, [product, showAll]);

  useEffect(() => load(), [load, generation]);

  const debouncer = useMemo(() => new Debouncer<string>(300, () => load()), [load]);
  useEffect(() => () => debouncer.cancel(), [debouncer]);
  useLiveEvents((e) => {
    if (e.type.startsWith('version.')) debouncer.add(e.type);
  });

  const selected = versions.find((v) => v.id === selectedId) ?? versions[0];
  const byProduct = useMemo(() => {
    const groups = new Map<string, Version[]>();
    for (const v of versions) groups.set(v.product, [...(groups.get(v.product) ?? []), v]);
    return [...groups.entries()];
  }, [versions]);

  return (
    <div className="page">
      <PageHeader title="Versions">
        <select
          value={product}
          onChange={(e) => setProduct(e.target.value)}
          aria-label="Product"
          data-testid="product-filter"
        >
          <option value="">All products</option>
          {products.map((p) => (
            <option key={p.name} value={p.name}>
              {p.name} (v{String(p.lastVersion).padStart(3, '0')}
              {p.latestApproved !== null
                ? `, approved v${String(p.latestApproved).padStart(3, '0')}`
                : ''}
              )
            </option>
          ))}
        </select>
        <label className="switch">
          <input
            type="checkbox"
            role="switch"
            data-view
            data-testid="show-unapproved"
            checked={showAll}
            onChange={(e) => setShowAll(e.target.checked)}
          />{' '}
          Show unapproved
        </label>
        <span className="count" data-testid="version-count">
          {loaded ? `${versions.length} version${versions.length === 1 ? '' : 's'}` : 'loading…'}
        </span>
      </PageHeader>
      <ErrorNote error={error} />
      <div className="versions-layout">
        <div className="version-list">
          {loaded && versions.length === 0 && (
            <p className="empty" data-testid="no-versions">
              {showAll
                ? 'No versions. Publish one with `drover submit … --publish PRODUCT`.'
                : 'No approved versions. Turn on “Show unapproved” to see the rest.'}
            </p>
          )}
          {byProduct.map(([name, vs]) => (
            <section key={name} className="product-group" aria-label={`Product ${name}`}>
              <h2 className="mono">{name}</h2>
              <div className="version-cards">
                {vs.map((v) => (
                  <VersionCard
                    key={v.id}
                    version={v}
                    selected={v.id === selected?.id}
                    onSelect={() => setSelectedId(v.id)}
                  />
                ))}
              </div>
            </section>
          ))}
        </div>
        {selected && (
          <VersionDetail
            key={selected.id}
            version={selected}
            me={me}
            onDecided={(updated) => {
              setVersions((vs) => vs.map((v) => (v.id === updated.id ? updated : v)));
              load();
            }}
          />
        )}
      </div>
    </div>
  );
}
