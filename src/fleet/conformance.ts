import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetProvider, LaunchRequest, Machine, WorkerBoot } from './provider.js';

/**
 * The fleet provider conformance suite (issue 12): every provider runs it against the real
 * thing — `local` against real worker processes, `ec2` against moto's EC2 API. It checks what
 * the scaler relies on: launches are tagged and listed, idempotent per client token,
 * terminations take machines out of the list, unknown ids are no error, and another farm's
 * machines are neither seen nor touched.
 */
export interface ProviderHarness {
  /** The provider, ready (called once, before the tests). */
  open(): Promise<FleetProvider>;
  /** Settings that launch (as the provider's schema accepts them). */
  settings: unknown;
  /** What workers get (a manager address they retry against is fine). */
  boot(fleet: string): WorkerBoot;
  /** A well-formed id of a machine that does not exist. */
  unknownId: string;
  /** Settings the schema must refuse, each with the field it must name. */
  badSettings: { value: unknown; field: string }[];
  /** How long a terminated machine may take to leave the list (default 30 s). */
  terminateWithinMs?: number;
  /** Extra cleanup after the suite (the provider's `close` is called first). */
  cleanup?(): Promise<void>;
}

/** Polls `check` until it is true or `ms` pass (no sleeping on hope). */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  ms = 30_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function providerConformance(name: string, harness: ProviderHarness): void {
  describe(`fleet provider conformance: ${name}`, () => {
    let provider: FleetProvider;
    // Unique per run, so leftovers of an earlier run (same data folder, same moto) never count.
    const run = randomBytes(3).toString('hex');
    const farm = `farm-${run}`;
    const otherFarm = `other-${run}`;
    const launched: { farm: string; ids: string[] }[] = [];

    const request = (over: Partial<LaunchRequest> & { fleet: string }): LaunchRequest => ({
      farm,
      region: harness.boot(over.fleet).region,
      count: 1,
      clientToken: `${over.fleet}-${randomBytes(6).toString('hex')}`,
      capacity: 'on-demand',
      boot: harness.boot(over.fleet),
      settings: harness.settings,
      ...over,
    });
    const launch = async (r: LaunchRequest) => {
      const result = await provider.launch(r);
      launched.push({ farm: r.farm, ids: result.machines.map((m) => m.id) });
      return result;
    };
    const ids = (ms: readonly Machine[]) => ms.map((m) => m.id).sort();
    const live = async (f: string, fleet: string) =>
      (await provider.list(f)).filter((m) => m.fleet === fleet);

    beforeAll(async () => {
      provider = await harness.open();
    });
    afterAll(async () => {
      // Whatever a failed test left behind.
      for (const l of launched) await provider?.terminate(l.farm, l.ids).catch(() => undefined);
      await provider?.close();
      await harness.cleanup?.();
    });

    it('launches N machines, listed with their farm and fleet', async () => {
      const r = request({ fleet: 'conf-a', count: 2 });
      const result = await launch(r);
      expect(result.errors).toEqual([]);
      expect(result.machines).toHaveLength(2);
      expect(new Set(ids(result.machines)).size).toBe(2);
      for (const m of result.machines) {
        expect(m).toMatchObject({ farm, fleet: 'conf-a', capacity: 'on-demand' });
        expect(['pending', 'running']).toContain(m.state);
        expect(m.launchedAt).toBeGreaterThan(Date.now() - 3600_000);
      }
      const listed = await live(farm, 'conf-a');
      expect(ids(listed)).toEqual(ids(result.machines));
      for (const m of listed) expect(m).toMatchObject({ farm, fleet: 'conf-a' });
    });

    it('a launch retried with the same client token launches nothing more', async () => {
      const r = request({ fleet: 'conf-b', count: 2 });
      const first = await launch(r);
      expect(first.machines).toHaveLength(2);
      const again = await launch(r);
      expect(ids(again.machines)).toEqual(ids(first.machines));
      expect(ids(await live(farm, 'conf-b'))).toEqual(ids(first.machines));
      // A new token is a new launch.
      const more = await launch(request({ fleet: 'conf-b', count: 1 }));
      expect(more.machines).toHaveLength(1);
      expect(ids(first.machines)).not.toContain(more.machines[0]!.id);
      expect(await live(farm, 'conf-b')).toHaveLength(3);
    });

    it('terminated machines leave the list; the others stay', async () => {
      const { machines } = await launch(request({ fleet: 'conf-c', count: 3 }));
      expect(machines).toHaveLength(3);
      const [gone, alsoGone, kept] = ids(machines) as [string, string, string];
      await provider.terminate(farm, [gone, alsoGone]);
      await waitFor(
        'terminated machines to leave the list',
        async () => {
          const now = ids(await live(farm, 'conf-c'));
          return !now.includes(gone) && !now.includes(alsoGone);
        },
        harness.terminateWithinMs ?? 30_000,
      );
      expect(ids(await live(farm, 'conf-c'))).toEqual([kept]);
      // Terminating again is no error.
      await provider.terminate(farm, [gone]);
    });

    it('terminating an unknown id is no error', async () => {
      await expect(provider.terminate(farm, [harness.unknownId])).resolves.toBeUndefined();
      await expect(provider.terminate(farm, [])).resolves.toBeUndefined();
    });

    it("another farm's machines are neither listed nor terminated", async () => {
      const theirs = await launch(request({ farm: otherFarm, fleet: 'conf-d', count: 1 }));
      const ours = await launch(request({ fleet: 'conf-d', count: 1 }));
      const theirId = theirs.machines[0]!.id;
      expect(ids(await live(farm, 'conf-d'))).toEqual(ids(ours.machines));
      expect(ids(await live(otherFarm, 'conf-d'))).toEqual([theirId]);
      await provider.terminate(farm, [theirId]);
      const still = await live(otherFarm, 'conf-d');
      expect(ids(still)).toEqual([theirId]);
      expect(still[0]!.state).not.toBe('stopping');
    });

    it('refuses bad settings, naming the field', () => {
      expect(provider.settingsSchema.safeParse(harness.settings).success).toBe(true);
      for (const bad of harness.badSettings) {
        const parsed = provider.settingsSchema.safeParse(bad.value);
        expect(parsed.success, JSON.stringify(bad.value)).toBe(false);
        const fields = parsed.error!.issues.map((i) => i.path.join('.'));
        expect(fields, JSON.stringify(bad.value)).toContain(bad.field);
      }
    });
  });
}
