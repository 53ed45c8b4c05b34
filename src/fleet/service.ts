import { DroverError, invalid, notFound } from '../core/errors.js';
import {
  applyFleetChanges,
  fleetSchema,
  type Fleet,
  type FleetChanges,
  type FleetDecision,
  type FleetDefinition,
  type FleetMachine,
  type FleetView,
  type UnservedWork,
} from '../core/fleet.js';
import { parseInput } from '../core/validate.js';
import type { Store } from '../store/contract.js';
import { workerName, type FleetProvider } from './provider.js';

/** How many of the latest events a reader without the scaler looks back through. */
const DECISION_LOOKBACK = 5000;

/**
 * Fleets as the API sees them: definitions validated (their provider's settings by the
 * provider), views with their members' counts, last decision and cost. Providers are
 * registered by whoever starts the manager (`drover manager`, `drover dev --autoscale`).
 */
export class FleetService {
  readonly providers = new Map<string, FleetProvider>();
  /** The scaler's latest decisions and unserved work, when this manager runs it. */
  latest: { decisions: Map<string, FleetDecision>; unserved: UnservedWork[] } | undefined;

  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  addProvider(provider: FleetProvider): void {
    this.providers.set(provider.kind, provider);
  }

  /** A definition as sent, checked whole: the core schema, then the provider's settings. */
  validate(input: unknown): FleetDefinition {
    const definition = parseInput(fleetSchema, input);
    return this.checkProvider(definition);
  }

  private checkProvider(definition: FleetDefinition): FleetDefinition {
    const provider = this.providers.get(definition.provider);
    if (!provider) {
      const known = [...this.providers.keys()];
      throw invalid(
        'provider',
        known.length > 0
          ? `"${definition.provider}" is not a provider of this manager (${known.join(', ')})`
          : `"${definition.provider}" is not a provider of this manager (it has none)`,
      );
    }
    const settings = provider.settingsSchema.safeParse(definition.settings);
    if (!settings.success) {
      const issue = settings.error.issues[0]!;
      const path = ['settings', ...issue.path.map(String)];
      if (issue.code === 'unrecognized_keys' && issue.keys[0]) path.push(issue.keys[0]);
      const field = path.join('.');
      throw invalid(
        field,
        issue.code === 'unrecognized_keys' ? 'is not a known setting' : issue.message,
      );
    }
    return { ...definition, settings: settings.data as Record<string, unknown> };
  }

  async create(input: unknown): Promise<FleetView> {
    const fleet = await this.store.fleets.createFleet(this.validate(input));
    return this.view(fleet);
  }

  async update(name: string, changes: FleetChanges): Promise<FleetView> {
    const fleet = await this.store.fleets.fetchFleet(name);
    if (!fleet) throw notFound(`fleet ${name}`);
    const { pausedReason: _p, createdAt: _c, updatedAt: _u, ...definition } = fleet;
    let next: FleetDefinition;
    try {
      next = applyFleetChanges(definition, changes);
    } catch (err) {
      if (err instanceof DroverError) throw err;
      // min > max after the change: the field named as the schema names it.
      next = parseInput(fleetSchema, { ...definition, ...changes });
    }
    const saved = await this.store.fleets.updateFleet(this.checkProvider(next), {
      resume: changes.paused === false,
    });
    return this.view(saved);
  }

  /**
   * Deletes a fleet (it has no live machine left) and revokes the worker tokens the scaler
   * made for its machines (`fleet-<name>-…`, acting as `<name>-<machine id prefix>*`, or
   * `<name>-*` when made by an earlier version): nothing needs them now.
   */
  async remove(name: string): Promise<void> {
    await this.store.fleets.deleteFleet(name);
    const patterns = new Set([
      `${name}-*`,
      ...[...this.providers.values()].map((p) => `${workerName(name, p.machineIdPrefix)}*`),
    ]);
    for (const t of await this.store.listTokens()) {
      if (
        t.revokedAt === null &&
        t.role === 'worker' &&
        patterns.has(t.workers) &&
        t.name.startsWith(`fleet-${name}-`)
      ) {
        await this.store.revokeToken(t.id);
      }
    }
  }

  async get(name: string): Promise<{ fleet: FleetView; machines: FleetMachine[] }> {
    const fleet = await this.store.fleets.fetchFleet(name);
    if (!fleet) throw notFound(`fleet ${name}`);
    const machines = await this.store.fleets.listMachines({
      fleet: name,
      since: this.now() - 3600_000,
    });
    return { fleet: await this.view(fleet, machines), machines };
  }

  async list(): Promise<{ fleets: FleetView[]; unserved: UnservedWork[] }> {
    const fleets = await this.store.fleets.listFleets();
    const decisions = await this.latestDecisions();
    const views = await Promise.all(fleets.map((f) => this.view(f, undefined, decisions)));
    return { fleets: views, unserved: this.latest?.unserved ?? (await this.recentUnserved()) };
  }

  /** A fleet's decisions, oldest first (only those that changed something are logged). */
  async history(name: string, since: number | undefined, limit: number): Promise<FleetDecision[]> {
    if (!(await this.store.fleets.fetchFleet(name))) throw notFound(`fleet ${name}`);
    const latest = await this.store.latestEventSeq();
    const events = await this.store.listEvents({
      after: Math.max(0, latest - DECISION_LOOKBACK),
      types: ['fleet.decision'],
      limit: 1000,
    });
    return events
      .map((e) => e.data as unknown as FleetDecision)
      .filter((d) => d.fleet === name && (since === undefined || d.at >= since))
      .slice(-limit);
  }

  private async latestDecisions(): Promise<Map<string, FleetDecision>> {
    if (this.latest) return this.latest.decisions;
    const latest = await this.store.latestEventSeq();
    const events = await this.store.listEvents({
      after: Math.max(0, latest - DECISION_LOOKBACK),
      types: ['fleet.decision'],
      limit: 1000,
    });
    const out = new Map<string, FleetDecision>();
    for (const e of events) {
      const d = e.data as unknown as FleetDecision;
      if (typeof d.fleet === 'string' && d.fleet !== '') out.set(d.fleet, d);
    }
    return out;
  }

  private async recentUnserved(): Promise<UnservedWork[]> {
    const latest = await this.store.latestEventSeq();
    const events = await this.store.listEvents({
      after: Math.max(0, latest - DECISION_LOOKBACK),
      types: ['fleet.decision'],
      limit: 1000,
    });
    for (const e of events.reverse()) {
      if (e.data.fleet === '' && Array.isArray(e.data.unserved)) {
        return e.data.unserved as UnservedWork[];
      }
    }
    return [];
  }

  async view(
    fleet: Fleet,
    machines?: FleetMachine[],
    decisions?: Map<string, FleetDecision>,
  ): Promise<FleetView> {
    const list =
      machines ?? (await this.store.fleets.listMachines({ fleet: fleet.name, limit: 1000 }));
    const now = this.now();
    let machineHours = 0;
    let costHours = 0;
    let costPerHourNow = 0;
    const count = { booting: 0, running: 0, draining: 0 };
    for (const m of list) {
      const hours = Math.max(0, (m.terminatedAt ?? now) - m.launchedAt) / 3600_000;
      machineHours += hours;
      costHours += hours * (m.costPerHour ?? 0);
      if (m.state !== 'terminated') {
        count[m.state]++;
        costPerHourNow += m.costPerHour ?? 0;
      }
    }
    const decision = (decisions ?? (await this.latestDecisions())).get(fleet.name) ?? null;
    return {
      ...fleet,
      status: { ...count, decision, costPerHourNow, costHours, machineHours },
    };
  }
}
