import { describe, expect, it } from 'vitest';
import { fleetSchema, type Fleet, type FleetInput } from '../core/fleet.js';
import { decide, type DemandJob, type FarmWorker, type FleetSnapshot } from './decide.js';

const NOW = 1_700_000_000_000;

function fleet(input: Partial<FleetInput> & { name: string }): Fleet {
  return {
    ...fleetSchema.parse({ provider: 'local', region: 'us', max: 10, ...input }),
    pausedReason: null,
    createdAt: 0,
    updatedAt: 0,
  };
}

function snap(f: Fleet, extra: Partial<FleetSnapshot> = {}): FleetSnapshot {
  return { fleet: f, booting: 0, launchedLastMinute: 0, blocked: undefined, ...extra };
}

function job(id: string, queued: number, extra: Partial<DemandJob['job']> = {}): DemandJob {
  return {
    job: {
      id,
      priority: 50,
      submittedAt: 0,
      pool: 'none',
      secondaryPool: '',
      group: 'none',
      regions: [],
      allowList: [],
      denyList: [],
      limits: [],
      machineLimit: 0,
      renderingWorkers: 0,
      ...extra,
    },
    queued,
    preferOnDemand: 0,
    dataRegion: extra.regions?.[0],
    badWorkers: [],
    renderingOn: new Set(),
  };
}

function member(name: string, fleetName: string, o: Partial<FarmWorker> = {}): FarmWorker {
  return {
    profile: { name, region: 'us', pools: [], groups: [] },
    slots: 1,
    running: 0,
    available: true,
    fleet: fleetName,
    draining: false,
    idleSince: NOW,
    ...o,
  };
}

describe('scaler decisions', () => {
  it('launches for dispatchable work a fleet worker may take, clamped to max', () => {
    const plan = decide({
      now: NOW,
      jobs: [job('j1', 5)],
      workers: [],
      fleets: [snap(fleet({ name: 'a', max: 3 }))],
      limits: new Map(),
    });
    expect(plan.decisions[0]).toMatchObject({ fleet: 'a', demand: 5, target: 3, launch: 3 });
    expect(plan.decisions[0]!.reason).toMatch(/capped at max 3/);
  });

  it('grows nothing for work its workers could not take, and says why', () => {
    const plan = decide({
      now: NOW,
      jobs: [job('j1', 4, { pool: 'gpu' }), job('j2', 2, { group: 'houdini' })],
      workers: [],
      fleets: [snap(fleet({ name: 'a', pools: ['cpu'] }))],
      limits: new Map(),
    });
    expect(plan.decisions[0]).toMatchObject({ demand: 0, target: 0, launch: 0 });
    expect(plan.unserved.map((u) => [u.jobId, u.tasks])).toEqual([
      ['j1', 4],
      ['j2', 2],
    ]);
    expect(plan.unserved[0]!.reason).toMatch(/a: pool/);
    expect(plan.unserved[1]!.reason).toMatch(/a: group/);
  });

  it('counts limits with free units, the machine limit and allow lists as the scheduler does', () => {
    const plan = decide({
      now: NOW,
      jobs: [
        job('licensed', 10, { limits: ['nuke'] }),
        job('narrow', 10, { machineLimit: 2 }),
        job('allowed', 3, { allowList: ['render-07'] }),
      ],
      workers: [],
      fleets: [snap(fleet({ name: 'a', max: 100 }))],
      limits: new Map([['nuke', { max: 5, inUse: 3 }]]),
    });
    // 2 free licences + 2 machines of the machine limit; the allow-listed job needs render-07.
    expect(plan.decisions[0]).toMatchObject({ demand: 4, target: 4 });
    expect(plan.unserved).toEqual([
      expect.objectContaining({ jobId: 'allowed', reason: expect.stringMatching(/allow-list/) }),
    ]);
  });

  it('subtracts idle matching workers and booting machines', () => {
    const a = fleet({ name: 'a' });
    const plan = decide({
      now: NOW,
      jobs: [job('j1', 6)],
      workers: [
        // A static worker (no fleet) that may take the job: used first.
        member('static-1', 'x', { fleet: undefined }),
        member('a-1', 'a'),
      ],
      fleets: [snap(a, { booting: 2 })],
      limits: new Map(),
    });
    // 6 tasks − 1 static idle = 5 for the fleet: 1 idle member + 2 booting + 2 new.
    expect(plan.decisions[0]).toMatchObject({ demand: 5, target: 5, launch: 2, booting: 2 });
  });

  it('prefers the fleet in the job’s data region, then the cheaper one', () => {
    const east = fleet({ name: 'east', region: 'east', costPerHour: 1 });
    const west = fleet({ name: 'west', region: 'west', costPerHour: 5 });
    const inWest = decide({
      now: NOW,
      jobs: [{ ...job('j1', 2), dataRegion: 'west' }],
      workers: [],
      fleets: [snap(east), snap(west)],
      limits: new Map(),
    });
    expect(inWest.decisions.find((d) => d.fleet === 'west')!.launch).toBe(2);
    expect(inWest.decisions.find((d) => d.fleet === 'east')!.launch).toBe(0);
    const anywhere = decide({
      now: NOW,
      jobs: [job('j1', 2)],
      workers: [],
      fleets: [snap(east), snap(west)],
      limits: new Map(),
    });
    expect(anywhere.decisions.find((d) => d.fleet === 'east')!.launch).toBe(2);
  });

  it('spills over to the next fleet when the preferred one is full, and respects the cost cap', () => {
    const cheap = fleet({ name: 'cheap', max: 2, costPerHour: 1 });
    const capped = fleet({ name: 'capped', max: 10, costPerHour: 2, costCapPerHour: 6 });
    const plan = decide({
      now: NOW,
      jobs: [job('j1', 20)],
      workers: [],
      fleets: [snap(cheap), snap(capped)],
      limits: new Map(),
    });
    expect(plan.decisions.find((d) => d.fleet === 'cheap')).toMatchObject({ launch: 2 });
    // 6 per hour / 2 per machine = 3 machines at most.
    expect(plan.decisions.find((d) => d.fleet === 'capped')).toMatchObject({
      target: 3,
      launch: 3,
    });
  });

  it('sends tasks interrupted too often to on-demand fleets', () => {
    const spot = fleet({ name: 'spot', capacity: 'spot', costPerHour: 1 });
    const onDemand = fleet({ name: 'od', capacity: 'on-demand', costPerHour: 3 });
    const plan = decide({
      now: NOW,
      jobs: [{ ...job('j1', 3), preferOnDemand: 1 }],
      workers: [],
      fleets: [snap(spot), snap(onDemand)],
      limits: new Map(),
    });
    expect(plan.decisions.find((d) => d.fleet === 'od')!.launch).toBe(1);
    expect(plan.decisions.find((d) => d.fleet === 'spot')!.launch).toBe(2);
  });

  it('keeps the scale-out rate and launches nothing while blocked', () => {
    const a = fleet({ name: 'a', scaleOutPerMinute: 4 });
    const rate = decide({
      now: NOW,
      jobs: [job('j1', 10)],
      workers: [],
      fleets: [snap(a, { launchedLastMinute: 3, booting: 3 })],
      limits: new Map(),
    });
    expect(rate.decisions[0]).toMatchObject({ target: 10, launch: 1 });
    const paused = decide({
      now: NOW,
      jobs: [job('j1', 10)],
      workers: [],
      fleets: [snap(a, { blocked: 'paused: boot failures' })],
      limits: new Map(),
    });
    expect(paused.decisions[0]).toMatchObject({ launch: 0 });
    expect(paused.decisions[0]!.reason).toMatch(/paused: boot failures/);
  });

  it('drains idle members longest idle first once their idle time is up, never a busy one', () => {
    const a = fleet({ name: 'a', idleShutdownS: 60 });
    const plan = decide({
      now: NOW,
      jobs: [],
      workers: [
        member('a-recent', 'a', { idleSince: NOW - 10_000 }),
        member('a-old', 'a', { idleSince: NOW - 120_000 }),
        member('a-older', 'a', { idleSince: NOW - 300_000 }),
        member('a-busy', 'a', { running: 1, available: false, idleSince: NOW - 900_000 }),
      ],
      fleets: [snap(a)],
      limits: new Map(),
    });
    expect(plan.decisions[0]).toMatchObject({ target: 1, drain: ['a-older', 'a-old'] });
  });

  it('keeps min and standby members warm', () => {
    const a = fleet({ name: 'a', min: 1, standby: 1, idleShutdownS: 1 });
    const plan = decide({
      now: NOW,
      jobs: [],
      workers: [
        member('a-1', 'a', { idleSince: NOW - 60_000 }),
        member('a-2', 'a', { idleSince: NOW - 50_000 }),
        member('a-3', 'a', { idleSince: NOW - 40_000 }),
      ],
      fleets: [snap(a)],
      limits: new Map(),
    });
    expect(plan.decisions[0]).toMatchObject({ target: 1, drain: ['a-1', 'a-2'] });
    const busy = decide({
      now: NOW,
      jobs: [],
      workers: [member('a-1', 'a', { running: 1, available: false })],
      fleets: [snap(a)],
      limits: new Map(),
    });
    // One busy member plus one on standby.
    expect(busy.decisions[0]).toMatchObject({ target: 2, launch: 1 });
  });

  it('drains (never kills) members above a lowered max: idle ones first, then busy ones', () => {
    const a = fleet({ name: 'a', max: 1, idleShutdownS: 3600 });
    const plan = decide({
      now: NOW,
      jobs: [job('j1', 5)],
      workers: [
        member('a-busy1', 'a', { running: 1, available: false }),
        member('a-busy2', 'a', { running: 1, available: false }),
        member('a-idle', 'a'),
      ],
      fleets: [snap(a)],
      limits: new Map(),
    });
    expect(plan.decisions[0]).toMatchObject({ target: 1, launch: 0 });
    expect(plan.decisions[0]!.drain).toEqual(['a-idle', 'a-busy1']);
  });
});

describe('fleet definitions', () => {
  it('name the field at fault', () => {
    const bad = fleetSchema.safeParse({
      name: 'a',
      provider: 'local',
      region: 'us',
      min: 5,
      max: 2,
    });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.path).toEqual(['min']);
    const cap = fleetSchema.safeParse({
      name: 'a',
      provider: 'local',
      region: 'us',
      max: 2,
      costCapPerHour: 3,
    });
    expect(cap.error!.issues[0]!.path).toEqual(['costCapPerHour']);
    expect(
      fleetSchema.safeParse({ name: 'Bad Name', provider: 'local', region: 'us', max: 1 }).success,
    ).toBe(false);
    expect(
      fleetSchema.safeParse({ name: 'a', provider: 'local', region: 'us', max: 100_000 }).success,
    ).toBe(false);
  });
});
