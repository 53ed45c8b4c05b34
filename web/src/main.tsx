/** The Drover monitor: a live view of the farm, served by the manager at `/`. */
import { StrictMode, useState, useSyncExternalStore, type ReactNode } from 'react';
import { auth } from './api.js';
import { createRoot } from 'react-dom/client';
import { useFeedStatus } from './live.js';
import { EventsPage } from './pages/EventsPage.js';
import { FleetsPage } from './pages/FleetsPage.js';
import { JobDetailPage } from './pages/JobDetailPage.js';
import { JobsPage } from './pages/JobsPage.js';
import { PluginsPage } from './pages/PluginsPage.js';
import { RegionsPage } from './pages/RegionsPage.js';
import { VersionsPage } from './pages/VersionsPage.js';
import { WorkersPage } from './pages/WorkersPage.js';
import { useMe } from './me.js';
import { Link, usePath } from './router.js';
import { useFeed } from './stores.js';
import './styles.css';

const sections = [
  { to: '/jobs', label: 'Jobs' },
  { to: '/workers', label: 'Workers' },
  { to: '/regions', label: 'Regions' },
  { to: '/fleets', label: 'Fleets' },
  { to: '/versions', label: 'Versions' },
  { to: '/plugins', label: 'Event plugins' },
  { to: '/events', label: 'Event log' },
];

function Page(props: { path: string }): ReactNode {
  const { path } = props;
  const job = /^\/jobs\/([^/]+)\/?$/.exec(path);
  if (job) return <JobDetailPage key={job[1]} id={decodeURIComponent(job[1]!)} />;
  if (path === '/' || path.startsWith('/jobs')) return <JobsPage />;
  if (path.startsWith('/workers')) return <WorkersPage />;
  if (path.startsWith('/regions')) return <RegionsPage />;
  if (path.startsWith('/fleets')) return <FleetsPage />;
  if (path.startsWith('/versions')) return <VersionsPage />;
  if (path.startsWith('/plugins')) return <PluginsPage />;
  if (path.startsWith('/events')) return <EventsPage />;
  return (
    <div className="page">
      <p>
        No page at <code>{path}</code>. <Link to="/jobs">Jobs</Link>
      </p>
    </div>
  );
}

/** Shown when the manager answered 401: it runs with tokens and ours is missing or revoked. */
function TokenBanner(): ReactNode {
  const needed = useSyncExternalStore(auth.watch, () => auth.needed);
  const [value, setValue] = useState('');
  if (!needed) return null;
  return (
    <form
      className="note error token-banner"
      onSubmit={(e) => {
        e.preventDefault();
        auth.setToken(value);
      }}
    >
      <span>
        {auth.token
          ? 'The manager refused this browser’s token (unknown or revoked).'
          : 'This manager needs a token.'}{' '}
        Paste one (a read-only token is enough to watch; the first admin token is in the manager’s
        data folder, <code>admin-token</code>):
      </span>
      <input
        type="password"
        aria-label="Token"
        value={value}
        onChange={(e) => setValue(e.target.value)}
        placeholder="drv_…"
      />
      <button type="submit" className="primary">
        Use token
      </button>
    </form>
  );
}

function App(): ReactNode {
  useFeed();
  const path = usePath();
  const status = useFeedStatus();
  // The token's role: a read-only token gets a monitor that changes nothing.
  const role = useMe()?.role;
  const current = path === '/' ? '/jobs' : path;
  return (
    <div className={role === 'read-only' ? 'app read-only' : 'app'}>
      <header className="topbar">
        <Link to="/jobs" className="brand">
          Drover
        </Link>
        <nav aria-label="Sections">
          {sections.map((s) => (
            <Link key={s.to} to={s.to} className={current.startsWith(s.to) ? 'active' : ''}>
              {s.label}
            </Link>
          ))}
        </nav>
        <span className="spacer" />
        {role === 'read-only' && (
          <span
            className="role-badge"
            data-testid="read-only"
            title="This token can watch the farm but not change it"
          >
            read-only
          </span>
        )}
        <span
          className={`feed feed-${status}`}
          data-testid="feed-status"
          title="The live event stream from the manager"
        >
          {status === 'live' ? 'live' : status === 'connecting' ? 'connecting…' : 'reconnecting…'}
        </span>
      </header>
      <TokenBanner />
      <main>
        <Page path={path} />
      </main>
    </div>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
