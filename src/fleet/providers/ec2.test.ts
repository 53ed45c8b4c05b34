import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  EC2Client,
  type Instance,
} from '@aws-sdk/client-ec2';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFrameList } from '../../core/frames.js';
import { jobSubmissionSchema } from '../../core/job-spec.js';
import { openSqliteStore } from '../../store/sqlite/index.js';
import { Scaler } from '../scaler.js';
import { FleetService } from '../service.js';
import { providerConformance, waitFor } from '../conformance.js';
import { FARM_TAG, FLEET_TAG, ProviderError, type WorkerBoot } from '../provider.js';
import { Ec2Provider, bootScript, toProviderError } from './ec2.js';

/**
 * The ec2 provider against moto's EC2 emulator (`python3 -m moto.server`), started on a
 * free port by this file: the real AWS SDK, real HTTP, an emulated EC2. Without moto the
 * tests say so and skip; with `DROVER_REQUIRE_MOTO=1` (CI, where it is installed) they fail.
 */
const motoInstalled = spawnSync('python3', ['-c', 'import moto'], { stdio: 'ignore' }).status === 0;
if (!motoInstalled) {
  const reason = 'moto is not installed (pip install "moto[server]"); the ec2 provider tests skip';
  if (process.env.DROVER_REQUIRE_MOTO === '1') {
    describe('ec2 provider', () => {
      it('needs moto (DROVER_REQUIRE_MOTO=1)', () => {
        throw new Error(reason);
      });
    });
  } else {
    console.warn(`[ec2 provider] skipped: ${reason}`);
  }
}

const REGION = 'us-east-1';
/** Moto takes any credentials; the SDK's default chain is not consulted in tests. */
const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing-secret' };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface Moto {
  endpoint: string;
  stop(): Promise<void>;
}

async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    'python3',
    ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)],
    {
      stdio: 'ignore',
    },
  );
  const endpoint = `http://127.0.0.1:${port}`;
  await waitFor('moto to answer', async () => {
    try {
      return (await fetch(`${endpoint}/moto-api/`)).ok;
    } catch {
      return false;
    }
  });
  return {
    endpoint,
    stop: () =>
      new Promise((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}

const boot = (fleet: string): WorkerBoot => ({
  managerUrls: ['https://drover.example:8080'],
  token: 'drv_fleet-token-aaaaaaaaaaaaaaaaaaaa',
  fleet,
  region: REGION,
  pools: ['comp'],
  groups: ['linux', 'gpu'],
  slots: 2,
});

/** Moto's world: an image from its catalogue and two subnets in a VPC. */
async function setUp(endpoint: string) {
  const client = new EC2Client({ region: REGION, endpoint, credentials });
  const images = await client.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
  const imageId = images.Images?.[0]?.ImageId;
  if (!imageId) throw new Error('moto has no images');
  const vpc = await client.send(new CreateVpcCommand({ CidrBlock: '10.7.0.0/16' }));
  const subnets: string[] = [];
  for (const cidr of ['10.7.1.0/24', '10.7.2.0/24']) {
    const s = await client.send(
      new CreateSubnetCommand({ VpcId: vpc.Vpc!.VpcId!, CidrBlock: cidr }),
    );
    subnets.push(s.Subnet!.SubnetId!);
  }
  return { client, imageId, subnets };
}

async function instances(client: EC2Client, farm: string): Promise<Instance[]> {
  const r = await client.send(
    new DescribeInstancesCommand({ Filters: [{ Name: `tag:${FARM_TAG}`, Values: [farm] }] }),
  );
  return (r.Reservations ?? []).flatMap((x) => x.Instances ?? []);
}

if (motoInstalled) {
  let moto: Moto | undefined;
  let settings: Record<string, unknown> = {};
  let started: Promise<Awaited<ReturnType<typeof setUp>>> | undefined;
  // Started by the first test that needs it (not when a filter skips them all), stopped once.
  const ready = () =>
    (started ??= (async () => {
      moto = await startMoto();
      const world = await setUp(moto.endpoint);
      settings = {
        endpoint: moto.endpoint,
        imageId: world.imageId,
        instanceTypes: ['t3.micro', 't3.small'],
        subnets: world.subnets,
      };
      return world;
    })());
  afterAll(async () => {
    await moto?.stop();
  });
  // The conformance suite reads `settings` when its tests run, after `open` awaited `ready`.
  const harness = {
    async open() {
      await ready();
      return new Ec2Provider({ clientConfig: { credentials } });
    },
    get settings() {
      return settings;
    },
    boot,
    unknownId: 'i-0123456789abcdef0',
    badSettings: [
      { value: { instanceTypes: ['t3.micro'] }, field: 'imageId' },
      { value: { imageId: 'ami-12c6146b', instanceTypes: [] }, field: 'instanceTypes' },
      { value: { imageId: 'ubuntu', instanceTypes: ['t3.micro'] }, field: 'imageId' },
      {
        value: { imageId: 'ami-12c6146b', instanceTypes: ['t3.micro'], subnets: ['vpc-1'] },
        field: 'subnets.0',
      },
      {
        value: { imageId: 'ami-12c6146b', instanceTypes: ['t3.micro'], endpoint: 'ftp://x' },
        field: 'endpoint',
      },
      {
        value: { imageId: 'ami-12c6146b', instanceTypes: ['t3.micro'], region: 'mars' },
        field: 'region',
      },
      {
        value: { imageId: 'ami-12c6146b', instanceTypes: ['t3.micro'], accessKeyId: 'AKIA' },
        field: '',
      },
    ],
  };
  providerConformance('ec2 (moto)', harness);

  describe('the scaler with the ec2 provider against moto', () => {
    it('launches and terminates exactly what its decisions say, one to one', async () => {
      const { client } = await ready();
      let t = Date.now();
      const dir = mkdtempSync(join(tmpdir(), 'drover-scaler-ec2-'));
      const store = await openSqliteStore(join(dir, 'drover.db'), { now: () => t });
      // As the manager registers it (src/manager/server.ts): locations from the ec2 fleets.
      const provider = new Ec2Provider({
        clientConfig: { credentials },
        locations: async () =>
          (await store.fleets.listFleets())
            .filter((f) => f.provider === 'ec2')
            .map((f) => ({ region: f.region, settings: f.settings })),
      });
      const fleets = new FleetService(store, () => t);
      fleets.addProvider(provider);
      const farm = 'farm-scaler-moto';
      const config = {
        farmId: farm,
        registerTimeout: 60,
        pauseAfterFailures: 3,
        interruptionsBeforeOnDemand: 2,
      };
      const scaler = new Scaler({
        store,
        fleets,
        log: pino({ level: 'silent' }),
        plugin: () => ({ state: 'global', config }),
        saveConfig: () => Promise.resolve(),
        lead: () => Promise.resolve(true),
        managerUrls: () => ['https://drover.example:8080'],
        createWorkerToken: () => Promise.resolve('drv_scaler-moto-token-aaaaaaaaaaaa'),
        listEveryMs: 0,
        now: () => t,
      });
      const live = async () =>
        (await instances(client, farm)).filter((i) =>
          ['pending', 'running'].includes(i.State?.Name ?? ''),
        );
      try {
        await fleets.create({ name: 'gpu', provider: 'ec2', region: REGION, max: 4, settings });
        const sub = jobSubmissionSchema.parse({
          plugin: 'CommandLine',
          frames: '1-3',
          regions: [REGION],
        });
        await store.createJob(sub, parseFrameList(sub.frames));

        await scaler.reconcile(config);
        const launched = await live();
        expect(launched).toHaveLength(3);
        for (const i of launched) {
          expect(i.Tags).toEqual(expect.arrayContaining([{ Key: FLEET_TAG, Value: 'gpu' }]));
        }
        const decisions = await store.listEvents({ types: ['fleet.launched'] });
        expect(decisions.map((e) => e.data.asked)).toEqual([3]);
        const recorded = await store.fleets.listMachines({ live: true });
        expect(recorded.map((m) => m.id).sort()).toEqual(launched.map((i) => i.InstanceId).sort());
        // Booting machines are capacity: a second look launches nothing.
        t += 1000;
        await scaler.reconcile(config);
        expect(await live()).toHaveLength(3);

        // None registers (no real machines): after the timeout each is terminated, once.
        t += 61_000;
        await scaler.reconcile(config);
        expect(await live()).toEqual([]);
        const stopped = await store.listEvents({ types: ['fleet.terminated'] });
        expect(stopped.flatMap((e) => e.data.machines as string[]).sort()).toEqual(
          launched.map((i) => i.InstanceId).sort(),
        );
        // Three in a row never registered: the fleet pauses and launches nothing more.
        expect((await store.fleets.fetchFleet('gpu'))!.pausedReason).toMatch(/never registered/);
        t += 1000;
        await scaler.reconcile(config);
        expect(await live()).toEqual([]);
        expect(await store.listEvents({ types: ['fleet.launched'] })).toHaveLength(1);
      } finally {
        await provider.close();
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('ec2 provider against moto', () => {
    let provider: Ec2Provider;
    let client: EC2Client;
    beforeAll(async () => {
      ({ client } = await ready());
      provider = new Ec2Provider({ clientConfig: { credentials } });
    });
    afterAll(async () => {
      await provider.close();
    });

    it('launches and terminates exactly what it is told, one to one', async () => {
      const farm = 'farm-one-to-one';
      const asked = [3, 1, 2];
      const launched: string[] = [];
      for (const [i, count] of asked.entries()) {
        const r = await provider.launch({
          farm,
          fleet: 'gpu',
          region: REGION,
          count,
          clientToken: `decision-${i}`,
          capacity: i === 1 ? 'on-demand' : 'spot',
          boot: boot('gpu'),
          settings,
        });
        expect(r.errors).toEqual([]);
        expect(r.machines).toHaveLength(count);
        launched.push(...r.machines.map((m) => m.id));
      }
      // EC2 holds exactly the instances the decisions asked for, tagged.
      let all = await instances(client, farm);
      expect(all.map((i) => i.InstanceId).sort()).toEqual([...launched].sort());
      for (const i of all) {
        const tags = Object.fromEntries((i.Tags ?? []).map((t) => [t.Key, t.Value]));
        expect(tags[FARM_TAG]).toBe(farm);
        expect(tags[FLEET_TAG]).toBe('gpu');
        expect(['t3.micro', 't3.small']).toContain(i.InstanceType);
      }
      const spot = all.filter((i) => i.InstanceLifecycle === 'spot');
      expect(spot).toHaveLength(5);
      const listed = await provider.list(farm);
      expect(listed.filter((m) => m.capacity === 'spot')).toHaveLength(5);
      expect(listed.filter((m) => m.capacity === 'on-demand')).toHaveLength(1);

      const stop = launched.slice(0, 4);
      await provider.terminate(farm, stop);
      all = await instances(client, farm);
      const ended = all.filter((i) =>
        ['shutting-down', 'terminated'].includes(i.State?.Name ?? ''),
      );
      expect(ended.map((i) => i.InstanceId).sort()).toEqual([...stop].sort());
      expect((await provider.list(farm)).map((m) => m.id).sort()).toEqual(launched.slice(4).sort());
      await provider.terminate(farm, launched.slice(4));
      expect(await provider.list(farm)).toEqual([]);
    });

    it('gives instances user data that starts the worker, with the token only in a private file', async () => {
      const farm = 'farm-user-data';
      const r = await provider.launch({
        farm,
        fleet: 'comp',
        region: REGION,
        count: 1,
        clientToken: 'ud',
        capacity: 'on-demand',
        boot: boot('comp'),
        settings,
      });
      const id = r.machines[0]!.id;
      const attr = await client.send(
        new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: 'userData' }),
      );
      const script = Buffer.from(attr.UserData!.Value!, 'base64').toString('utf8');
      expect(script).toBe(bootScript(boot('comp'), { droverCommand: 'drover' }));
      await provider.terminate(farm, [id]);
    });

    it('a restarted manager adopts instances through the fleets it knows', async () => {
      const farm = 'farm-adopt';
      const r = await provider.launch({
        farm,
        fleet: 'comp',
        region: REGION,
        count: 2,
        clientToken: 'adopt',
        capacity: 'spot',
        boot: boot('comp'),
        settings,
      });
      const fresh = new Ec2Provider({
        clientConfig: { credentials },
        locations: () => [{ region: REGION, settings }],
      });
      const seen = await fresh.list(farm);
      expect(seen.map((m) => m.id).sort()).toEqual(r.machines.map((m) => m.id).sort());
      expect(seen.every((m) => m.fleet === 'comp' && m.capacity === 'spot')).toBe(true);
      // Without knowing where to look, a provider sees nothing (and fails nothing).
      const blind = new Ec2Provider({ clientConfig: { credentials } });
      expect(await blind.list(farm)).toEqual([]);
      await fresh.terminate(
        farm,
        r.machines.map((m) => m.id),
      );
      expect(await provider.list(farm)).toEqual([]);
      await fresh.close();
      await blind.close();
    });

    it('an unreachable EC2 is a temporary provider error, with no secret in it', async () => {
      const port = await freePort();
      const p = new Ec2Provider({ clientConfig: { credentials, maxAttempts: 1 } });
      const err = await p
        .launch({
          farm: 'f',
          fleet: 'x',
          region: REGION,
          count: 1,
          clientToken: 't',
          capacity: 'spot',
          boot: boot('x'),
          settings: { ...settings, endpoint: `http://127.0.0.1:${port}` },
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).temporary).toBe(true);
      expect((err as ProviderError).message).not.toContain(credentials.secretAccessKey);
      expect((err as ProviderError).message).not.toContain(boot('x').token);
      await p.close();
    });

    it('refuses a fleet region that is not an AWS region, naming settings.region', async () => {
      await expect(
        provider.launch({
          farm: 'f',
          fleet: 'x',
          region: 'paris-studio',
          count: 1,
          clientToken: 't',
          capacity: 'spot',
          boot: boot('x'),
          settings,
        }),
      ).rejects.toThrow(/settings\.region/);
    });
  });
}

describe('ec2 provider pieces', () => {
  it('maps AWS errors: throttling and capacity are temporary, credentials and settings are not', () => {
    const aws = (name: string, message: string, status = 400) =>
      Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
    expect(
      toProviderError(aws('RequestLimitExceeded', 'Request limit exceeded.', 503)),
    ).toMatchObject({
      code: 'RequestLimitExceeded',
      temporary: true,
      message: 'Request limit exceeded.',
    });
    expect(toProviderError(aws('InsufficientInstanceCapacity', 'no capacity'))).toMatchObject({
      temporary: true,
    });
    expect(
      toProviderError(
        aws('AuthFailure', 'AWS was not able to validate the provided access credentials'),
      ),
    ).toMatchObject({
      code: 'AuthFailure',
      temporary: false,
    });
    expect(
      toProviderError(
        aws('CredentialsProviderError', 'Could not load credentials from any providers'),
      ),
    ).toMatchObject({
      temporary: false,
    });
    expect(
      toProviderError(aws('InvalidParameterValue', 'x'.repeat(5000))).message.length,
    ).toBeLessThan(600);
  });

  describe('the boot script', () => {
    let imds: Server;
    let imdsUrl = '';
    let dir = '';
    beforeAll(async () => {
      // A stand-in for the instance metadata service: IMDSv2 token, then the instance id.
      imds = createServer((req, res) => {
        if (req.method === 'PUT' && req.url === '/latest/api/token') {
          res.end('imds-session');
        } else if (
          req.url === '/latest/meta-data/instance-id' &&
          req.headers['x-aws-ec2-metadata-token'] === 'imds-session'
        ) {
          res.end('i-0abc1234def567890');
        } else {
          res.statusCode = 401;
          res.end();
        }
      });
      await new Promise<void>((r) => imds.listen(0, '127.0.0.1', r));
      imdsUrl = `http://127.0.0.1:${(imds.address() as { port: number }).port}/latest`;
      dir = mkdtempSync(join(tmpdir(), 'drover-boot-'));
    });
    afterAll(async () => {
      await new Promise((r) => imds.close(r));
      rmSync(dir, { recursive: true, force: true });
    });

    it('starts drover worker as <fleet>-<instance id> with the token in a 0600 file', async () => {
      // A stand-in `drover` that records its arguments and the token file it was given.
      const fake = join(dir, 'drover');
      writeFileSync(
        fake,
        [
          '#!/bin/sh',
          `printf '%s\\n' "$@" > ${dir}/args`,
          'for a; do last=$a; done',
          `stat -c %a "$last" > ${dir}/mode`,
          `cat "$last" > ${dir}/token`,
          `printf '%s' "$DROVER_MACHINE_NOTICE" > ${dir}/notice`,
          '',
        ].join('\n'),
      );
      chmodSync(fake, 0o755);
      const b = { ...boot("o'brien"), pools: ['comp', "it's"] };
      const script = bootScript(b, { droverCommand: fake })
        .replace('http://169.254.169.254/latest', imdsUrl)
        .replaceAll('/run/drover', join(dir, 'run'));
      // The token never appears on the worker's command line.
      expect(script.split('\n').find((l) => l.startsWith('exec'))).not.toContain(b.token);
      // Not spawnSync: the stand-in metadata service runs in this process.
      const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const status = await new Promise<number | null>((r) => child.once('exit', r));
      expect(stderr).toBe('');
      expect(status).toBe(0);
      const args = readFileSync(join(dir, 'args'), 'utf8').trimEnd().split('\n');
      expect(args).toEqual([
        'worker',
        '--manager',
        'https://drover.example:8080',
        '--name',
        "o'brien-i-0abc1234def567890",
        '--region',
        REGION,
        '--slots',
        '2',
        '--pools',
        "comp,it's",
        '--groups',
        'linux,gpu',
        '--token-file',
        join(dir, 'run', 'worker-token'),
      ]);
      expect(readFileSync(join(dir, 'mode'), 'utf8').trim()).toBe('600');
      expect(readFileSync(join(dir, 'token'), 'utf8').trim()).toBe(b.token);
      expect(readFileSync(join(dir, 'notice'), 'utf8')).toBe('ec2');
    });

    it('refuses a token that could break out of its file', () => {
      expect(() =>
        bootScript(
          { ...boot('x'), token: 'abc\nDROVER_TOKEN_END\nrm -rf /' },
          { droverCommand: 'drover' },
        ),
      ).toThrow(ProviderError);
    });
  });
});
