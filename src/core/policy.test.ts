import { describe, expect, it } from 'vitest';
import {
  compareCandidates,
  ineligibility,
  pickJob,
  poolRank,
  type DispatchCandidate,
  type LimitState,
  type WorkerProfile,
} from './policy.js';

const worker: WorkerProfile = {
  name: 'w1',
  region: 'us-west-2',
  pools: ['fx', 'lighting'],
  groups: ['gpu'],
};
let seq = 0;
function job(over: Partial<DispatchCandidate> = {}): DispatchCandidate {
  seq += 1;
  return {
    id: `job${String(seq).padStart(3, '0')}`,
    priority: 50,
    submittedAt: seq,
    pool: 'none',
    secondaryPool: '',
    group: 'none',
    regions: [],
    allowList: [],
    denyList: [],
    limits: [],
    machineLimit: 0,
    renderingWorkers: 0,
    workerOnJob: false,
    workerIsBad: false,
    ...over,
  };
}
const noLimits = new Map<string, LimitState>();

describe('poolRank', () => {
  it("ranks primary pools by the worker's order, then secondary pools, then no pool", () => {
    expect(poolRank({ pool: 'fx', secondaryPool: '' }, worker)).toBe(0);
    expect(poolRank({ pool: 'lighting', secondaryPool: '' }, worker)).toBe(1);
    expect(poolRank({ pool: 'comp', secondaryPool: 'fx' }, worker)).toBe(2);
    expect(poolRank({ pool: 'comp', secondaryPool: 'lighting' }, worker)).toBe(3);
    expect(poolRank({ pool: 'none', secondaryPool: '' }, worker)).toBe(4);
    expect(poolRank({ pool: 'comp', secondaryPool: '' }, worker)).toBeUndefined();
  });
});

describe('ineligibility', () => {
  const cases: Array<[string, Partial<DispatchCandidate>, string | undefined]> = [
    ['an open job', {}, undefined],
    ['a pool the worker lacks', { pool: 'comp' }, 'pool'],
    ['a group the worker lacks', { group: 'cpu-big' }, 'group'],
    ['a group the worker has', { group: 'gpu' }, undefined],
    ['another region', { regions: ['eu-west-2'] }, 'region'],
    ['its region among others', { regions: ['eu-west-2', 'us-west-2'] }, undefined],
    ['an allow list without it', { allowList: ['w2'] }, 'allow-list'],
    ['a deny list with it', { denyList: ['w1'] }, 'deny-list'],
    ['a bad worker', { workerIsBad: true }, 'bad-worker'],
    ['machine limit reached', { machineLimit: 2, renderingWorkers: 2 }, 'machine-limit'],
    [
      'machine limit reached but already on it',
      { machineLimit: 2, renderingWorkers: 2, workerOnJob: true },
      undefined,
    ],
    ['a limit used up', { limits: ['nuke'] }, 'limit'],
    ['a limit nobody defined', { limits: ['houdini'] }, undefined],
  ];
  for (const [what, over, expected] of cases) {
    it(`${what} → ${expected ?? 'eligible'}`, () => {
      const limits = new Map([['nuke', { max: 2, inUse: 2 }]]);
      expect(ineligibility(job(over), worker, limits)).toBe(expected);
    });
  }
});

describe('pickJob', () => {
  it('takes pool order over priority, priority over age, age over id', () => {
    const lowFx = job({ pool: 'fx', priority: 1 });
    const highNone = job({ priority: 100 });
    const oldMid = job({ priority: 60 });
    const newMid = job({ priority: 60 });
    const all = [newMid, highNone, oldMid, lowFx];
    const order = [...all].sort((a, b) => compareCandidates(a, b, worker)).map((j) => j.id);
    expect(order).toEqual([lowFx.id, highNone.id, oldMid.id, newMid.id]);
    expect(pickJob(all, worker, noLimits)?.id).toBe(lowFx.id);
  });

  it('skips ineligible jobs and answers undefined when none is left', () => {
    const denied = job({ priority: 100, denyList: ['w1'] });
    const ok = job({ priority: 1 });
    expect(pickJob([denied, ok], worker, noLimits)?.id).toBe(ok.id);
    expect(pickJob([denied], worker, noLimits)).toBeUndefined();
  });
});
