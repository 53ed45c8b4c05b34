/**
 * Fleets (issue 12): each fleet's settings, its machines and their workers, what the scaler
 * last decided and why, and a chart of demand and capacity over time from the scaler's
 * decision history. Admins may change a fleet's min/max/standby and resume a paused fleet;
 * everyone else sees no such controls (the API would refuse them anyway). Reloads on
 * `fleet.*` and worker events (debounced) and on every reconnect of the live feed.
 */
import {
  useCallback,
  useEffect,
  useMemo,
  useRef,
  useState,
  type FormEvent,
  type ReactNode,
} from 'react';
import {
  api,
  type FleetDecision,
  type FleetListReply,
  type FleetMachine,
  type FleetView,
} from '../api.js';
import { ErrorNote, PageHeader, StateBadge } from '../components/bits.js';
import { ago, dateTime } from '../format.js';
import { Debouncer, useFeedGeneration, useLiveEvents } from '../live.js';
import { useMe } from '../me.js';
import { Link } from '../router.js';
import { useNow } from './WorkersPage.js';

interface FleetData {
  fleet: FleetView;
  machines: FleetMachine[];
  history: FleetDecision[];
}

/** The chart covers the last hour of decisions. */
const CHART_WINDOW_MS = 3600_000;

/** Machines serving the fleet at a decision: members plus those still booting. */
const capacityOf = (d: FleetDecision) => d.idle + d.busy + d.booting + d.draining;

/**
 * Demand, capacity and target as step lines over the last hour of decisions (an inline SVG:
 * a few hundred points need no chart library).
 */
export function DemandChart(props: { name: string; history: FleetDecision[] }): ReactNode {
  const { history } = props;
  const width = 640;
  const height = 150;
  const pad = { left: 28, right: 8, top: 8, bottom: 18 };
  if (history.length === 0) {
    return (
      <p className="muted" data-testid="fleet-chart-empty">
        No scaler decisions yet: the chart fills in as the scaler reconciles this fleet.
      </p>
    );
  }
  const end = Math.max(history[history.length - 1]!.at, Date.now());
  const start = Math.min(history[0]!.at, end - 60_000);
  const top = Math.max(1, ...history.map((d) => Math.max(d.demand, capacityOf(d), d.target)));
  const x = (t: number) =>
    pad.left + ((t - start) / Math.max(1, end - start)) * (width - pad.left - pad.right);
  const y = (v: number) => pad.top + (1 - v / top) * (height - pad.top - pad.bottom);
  const steps = (value: (d: FleetDecision) => number) => {
    const pts: string[] = [];
    history.forEach((d, i) => {
      if (i > 0) pts.push(`${x(d.at).toFixed(1)},${y(value(history[i - 1]!)).toFixed(1)}`);
      pts.push(`${x(d.at).toFixed(1)},${y(value(d)).toFixed(1)}`);
    });
    pts.push(`${x(end).toFixed(1)},${y(value(history[history.length - 1]!)).toFixed(1)}`);
    return pts.join(' ');
  };
  const last = history[history.length - 1]!;
  return (
    <figure className="fleet-chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        width="100%"
        role="img"
        aria-label={`Demand and capacity of fleet ${props.name}`}
        data-testid="fleet-chart"
        data-points={history.length}
      >
        <line x1={pad.left} x2={width - pad.right} y1={y(0)} y2={y(0)} stroke="#3a424d" />
        <line x1={pad.left} x2={width - pad.right} y1={y(top)} y2={y(top)} stroke="#262c35" />
        <text x={2} y={y(top) + 4} fontSize="10" fill="#8b95a3">
          {top}
        </text>
        <text x={2} y={y(0)} fontSize="10" fill="#8b95a3">
          0
        </text>
        <text x={pad.left} y={height - 4} fontSize="10" fill="#8b95a3">
          {new Date(start).toLocaleTimeString()}
        </text>
        <text x={width - pad.right} y={height - 4} fontSize="10" fill="#8b95a3" textAnchor="end">
          {new Date(end).toLocaleTimeString()}
        </text>
        <polyline
          points={steps((d) => d.target)}
          fill="none"
          stroke="#8b95a3"
          strokeDasharray="4 3"
          data-series="target"
        />
        <polyline
          points={steps(capacityOf)}
          fill="none"
          stroke="#4ea1ff"
          strokeWidth="2"
          data-series="capacity"
        />
        <polyline
          points={steps((d) => d.demand)}
          fill="none"
          stroke="#f0a040"
          strokeWidth="2"
          data-series="demand"
        />
      </svg>
      <figcaption className="muted">
        <span style={{ color: '#f0a040' }}>■</span> demand {last.demand} ·{' '}
        <span style={{ color: '#4ea1ff' }}>■</span> capacity {capacityOf(last)} ·{' '}
        <span style={{ color: '#8b95a3' }}>▪▪</span> target {last.target}
      </figcaption>
    </figure>
  );
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function SizeForm(props: { fleet: FleetView; onSaved: () => void }): ReactNode {
  const { fleet } = props;
  const [min, setMin] = useState(String(fleet.min));
  const [max, setMax] = useState(String(fleet.max));
  const [standby, setStandby] = useState(String(fleet.standby));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const save = (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    api
      .updateFleet(fleet.name, { min: Number(min), max: Number(max), standby: Number(standby) })
      .then(props.onSaved, (err: unknown) =>
        setError(err instanceof Error ? err.message : String(err)),
      )
      .finally(() => setBusy(false));
  };
  const field = (label: string, value: string, set: (v: string) => void) => (
    <label>
      {label}{' '}
      <input
        type="number"
        min={0}
        value={value}
        onChange={(e) => set(e.target.value)}
        aria-label={`${label} of ${fleet.name}`}
        style={{ width: 64 }}
      />
    </label>
  );
  return (
    <form className="fleet-size" onSubmit={save} aria-label={`Size of ${fleet.name}`}>
      {field('min', min, setMin)} {field('max', max, setMax)}{' '}
      {field('standby', standby, setStandby)}{' '}
      <button type="submit" className="small" disabled={busy}>
        Save
      </button>
      {fleet.pausedReason !== null && (
        <button
          type="button"
          className="small"
          disabled={busy}
          onClick={() => {
            setBusy(true);
            api
              .updateFleet(fleet.name, { paused: false })
              .then(props.onSaved, (err: unknown) =>
                setError(err instanceof Error ? err.message : String(err)),
              )
              .finally(() => setBusy(false));
          }}
        >
          Resume
        </button>
      )}
      <ErrorNote error={error} />
    </form>
  );
}

function FleetPanel(props: {
  data: FleetData;
  admin: boolean;
  now: number;
  onChanged: () => void;
}): ReactNode {
  const { fleet: f, machines, history } = props.data;
  const s = f.status;
  const decision = s.decision;
  const live = machines.filter((m) => m.state !== 'terminated');
  const settings = Object.entries(f.settings);
  return (
    <section className="panel fleet" aria-label={`Fleet ${f.name}`} data-testid="fleet">
      <div className="panel-head">
        <h2>{f.name}</h2>
        <span className="muted">
          {f.provider} · {f.region} · {f.capacity}
        </span>
        {f.pausedReason !== null && <StateBadge state="paused" title={f.pausedReason} />}
        <span className="muted" data-testid="fleet-counts">
          target {decision?.target ?? '–'} · {s.running} running · {s.booting} booting ·{' '}
          {s.draining} draining
        </span>
      </div>
      {f.pausedReason !== null && (
        <div className="note error" role="status">
          Paused: {f.pausedReason}
        </div>
      )}
      <div className="detail-grid">
        <div>
          <DemandChart name={f.name} history={history} />
          {decision && (
            <p className="muted" data-testid="fleet-decision">
              Last decision {ago(decision.at, props.now)}: demand {decision.demand}, idle{' '}
              {decision.idle}, busy {decision.busy}, booting {decision.booting}, target{' '}
              {decision.target}
              {decision.launch > 0 ? `, launched ${decision.launch}` : ''}
              {decision.drain.length > 0 ? `, draining ${decision.drain.join(', ')}` : ''} —{' '}
              {decision.reason}
            </p>
          )}
          <h3>Machines</h3>
          {live.length === 0 ? (
            <p className="muted">No machines: the fleet is at zero.</p>
          ) : (
            <table className="kv fleet-machines" aria-label={`Machines of ${f.name}`}>
              <thead>
                <tr>
                  {['Worker', 'Machine', 'State', 'Capacity', 'Since'].map((h) => (
                    <th key={h} style={{ width: 'auto' }}>
                      {h}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {live.map((m) => (
                  <tr key={m.id} data-testid="fleet-machine" data-state={m.state}>
                    <td>
                      <Link to="/workers">{m.worker}</Link>
                    </td>
                    <td>
                      <code>{m.id}</code>
                    </td>
                    <td>
                      <StateBadge state={m.state} />
                    </td>
                    <td>{m.capacity}</td>
                    <td title={dateTime(m.registeredAt ?? m.launchedAt)}>
                      {ago(m.registeredAt ?? m.launchedAt, props.now)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
        <div>
          <table className="kv" aria-label={`Settings of ${f.name}`}>
            <tbody>
              <tr>
                <th>Size</th>
                <td>
                  min {f.min} · max {f.max} · standby {f.standby}
                </td>
              </tr>
              <tr>
                <th>Pools / groups</th>
                <td>
                  {f.pools.join(', ') || '–'} / {f.groups.join(', ') || '–'}
                </td>
              </tr>
              <tr>
                <th>Slots per worker</th>
                <td>{f.slots}</td>
              </tr>
              <tr>
                <th>Scale-out</th>
                <td>{f.scaleOutPerMinute} per minute</td>
              </tr>
              <tr>
                <th>Idle shutdown</th>
                <td>{f.idleShutdownS} s</td>
              </tr>
              <tr>
                <th>Cost</th>
                <td>
                  {f.costPerHour !== undefined ? `${f.costPerHour}/h per machine` : '–'}
                  {f.costCapPerHour !== undefined ? ` · cap ${f.costCapPerHour}/h` : ''} · now{' '}
                  {s.costPerHourNow.toFixed(2)}/h · {s.costHours.toFixed(2)} spent (
                  {s.machineHours.toFixed(2)} machine-hours)
                </td>
              </tr>
              {settings.map(([k, v]) => (
                <tr key={k}>
                  <th>
                    {f.provider}.{k}
                  </th>
                  <td>
                    <code>{typeof v === 'string' ? v : JSON.stringify(v)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {props.admin && <SizeForm key={f.updatedAt} fleet={f} onSaved={props.onChanged} />}
        </div>
      </div>
    </section>
  );
}

export function FleetsPage(): ReactNode {
  const role = useMe()?.role;
  const generation = useFeedGeneration();
  const now = useNow(5000);
  const [list, setList] = useState<FleetListReply>();
  const [fleets, setFleets] = useState<FleetData[]>([]);
  const [error, setError] = useState<string | null>(null);
  // The newest load wins: an older reply arriving late is dropped.
  const loadSeq = useRef(0);

  const load = useCallback(() => {
    const seq = ++loadSeq.current;
    const since = Date.now() - CHART_WINDOW_MS;
    api
      .listFleets()
      .then(async (reply) => {
        const details = await Promise.all(
          reply.fleets.map(async (f) => {
            const [detail, history] = await Promise.all([
              api.getFleet(f.name),
              api.fleetHistory(f.name, since),
            ]);
            return { fleet: detail.fleet, machines: detail.machines, history };
          }),
        );
        return { reply, details };
      })
      .then(
        ({ reply, details }) => {
          if (seq !== loadSeq.current) return;
          setList(reply);
          setFleets(details);
          setError(null);
        },
        (err: unknown) => {
          if (seq === loadSeq.current) setError(err instanceof Error ? err.message : String(err));
        },
      );
  }, []);

  useEffect(() => load(), [load, generation]);
  const debouncer = useMemo(() => new Debouncer<string>(500, () => load()), [load]);
  useEffect(() => () => debouncer.cancel(), [debouncer]);
  useLiveEvents((e) => {
    if (e.type.startsWith('fleet.') || e.type === 'worker.started' || e.type === 'worker.stopped')
      debouncer.add(e.type);
  });

  const admin = role === 'admin';
  return (
    <div className="page">
      <PageHeader title="Fleets">
        <span className="count">
          {list ? plural(list.fleets.length, 'fleet') : 'loading…'}
          {list && (
            <>
              {' · scaler '}
              <span data-testid="scaler-state">{list.scaler.state}</span>
              {list.scaler.state === 'disabled' && (
                <>
                  {' '}
                  (turn it on in <Link to="/plugins">Event plugins</Link>)
                </>
              )}
            </>
          )}
        </span>
      </PageHeader>
      <ErrorNote error={error} />
      {list && list.fleets.length === 0 && (
        <p className="muted">
          No fleets. An admin defines one with <code>drover fleet create</code> (providers:{' '}
          {list.scaler.providers.join(', ') || 'none'}).
        </p>
      )}
      {list && list.unserved.length > 0 && (
        <div className="note" role="status" data-testid="unserved">
          Work no fleet may run (it scales nothing):
          <ul className="plain">
            {list.unserved.map((u) => (
              <li key={u.jobId}>
                <Link to={`/jobs/${u.jobId}`}>{u.jobId}</Link>: {plural(u.tasks, 'task')} —{' '}
                {u.reason}
              </li>
            ))}
          </ul>
        </div>
      )}
      {fleets.map((d) => (
        <FleetPanel key={d.fleet.name} data={d} admin={admin} now={now} onChanged={load} />
      ))}
    </div>
  );
}
