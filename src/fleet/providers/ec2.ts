import { createHash } from 'node:crypto';
import {
  CreateFleetCommand,
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
  TerminateInstancesCommand,
  type EC2ClientConfig,
  type _InstanceType,
  type Filter,
  type FleetLaunchTemplateOverridesRequest,
  type Instance,
  type RequestLaunchTemplateData,
} from '@aws-sdk/client-ec2';
import { z } from 'zod';
import { text } from '../../core/text.js';
import {
  FARM_TAG,
  FLEET_TAG,
  ProviderError,
  type FleetProvider,
  type LaunchRequest,
  type LaunchResult,
  type Machine,
  type MachineState,
  type WorkerBoot,
} from '../provider.js';

/**
 * The `ec2` provider: machines are EC2 instances launched with `CreateFleet` of type
 * `instant` (launches now, reports per-override errors, maintains nothing: the scaler owns
 * reconciliation), found with `DescribeInstances` by tag and ended with
 * `TerminateInstances`.
 *
 * Credentials come from the AWS SDK's default chain, never from fleet settings: environment
 * (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`), the shared files
 * (`~/.aws/credentials`, `~/.aws/config`, `AWS_PROFILE`), SSO, web identity
 * (`AWS_WEB_IDENTITY_TOKEN_FILE`, e.g. EKS), the ECS container or EC2 instance role. The
 * manager needs `ec2:CreateFleet`, `ec2:RunInstances`, `ec2:CreateTags`,
 * `ec2:DescribeInstances`, `ec2:TerminateInstances`, `ec2:CreateLaunchTemplate`,
 * `ec2:CreateLaunchTemplateVersion`, `ec2:DescribeLaunchTemplates`,
 * `ec2:DescribeLaunchTemplateVersions` (and `iam:PassRole` for an instance profile).
 *
 * A launch's user data goes into a launch template version (CreateFleet takes no user data):
 * the provider keeps one template per farm and fleet (`drover-<fleet>-<farm hash>`), built
 * from the settings' image, security groups, key and instance profile — or, with
 * `launchTemplate`, a version of the user's own template based on the one named (EC2 merges
 * it). A version is reused while its data (same boot) is unchanged. The user data installs
 * nothing: it reads the instance id from the instance metadata (IMDSv2, which the template
 * requires) and starts the `drover worker` already on the image as `<fleet>-<instance id>`,
 * with the fleet's worker token in a file only the worker's user may read. Anyone allowed to
 * read the template's or the instance's user data can read that token: it is scoped to the
 * fleet's worker names and is revoked with the fleet.
 *
 * Every instance carries the tags `drover:farm`, `drover:fleet` and `drover:launch` (a hash
 * of the client token): a retried launch finds what the first one started even when EC2's
 * own `ClientToken` idempotency is not there (moto) or has expired.
 */

export const LAUNCH_TAG = 'drover:launch';

const hex = (prefix: string) => new RegExp(`^${prefix}-[0-9a-f]{8,17}$`);
const awsRegion = text().regex(
  /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/,
  'must be an AWS region like us-west-2',
);

export const ec2SettingsSchema = z
  .object({
    /** The AWS region, when the fleet's region is not spelled as one. */
    region: awsRegion.optional(),
    /** Another EC2 endpoint (tests: moto); https or http. */
    endpoint: text()
      .max(500)
      .regex(/^https?:\/\/[^\s/]+(\/\S*)?$/, 'must be an http(s) URL')
      .optional(),
    imageId: text().regex(hex('ami'), 'must be an AMI id like ami-0abc1234').optional(),
    /** Instance types EC2 may choose among (one override per type and subnet). */
    instanceTypes: z
      .array(text().regex(/^[a-z0-9-]+\.[a-z0-9-]+$/, 'must be an instance type like c7i.4xlarge'))
      .min(1)
      .max(10),
    /** Subnets (one region's availability zones); none: the default VPC's. */
    subnets: z
      .array(text().regex(hex('subnet'), 'must be a subnet id like subnet-0abc1234'))
      .max(8)
      .default([]),
    securityGroups: z
      .array(text().regex(hex('sg'), 'must be a security group id like sg-0abc1234'))
      .max(5)
      .default([]),
    keyName: text().min(1).max(255).optional(),
    /** An instance profile name (the workers' role, e.g. for S3 access). */
    instanceProfile: text()
      .regex(/^[\w+=,.@-]{1,128}$/, 'must be an instance profile name')
      .optional(),
    /** The user's own template to base launches on, instead of `imageId` and the rest. */
    launchTemplate: z
      .object({
        id: text().regex(/^lt-[0-9a-f]{8,17}$/, 'must be a launch template id like lt-0abc1234'),
        version: text()
          .regex(/^(\$Latest|\$Default|\d{1,6})$/, 'must be $Latest, $Default or a number')
          .default('$Default'),
      })
      .strict()
      .optional(),
    /** How the image starts Drover (`drover` on its PATH, or an absolute path). */
    droverCommand: text()
      .regex(/^[A-Za-z0-9_./-]{1,200}$/, 'must be a command name or path')
      .default('drover'),
    /** The user the worker runs as (default root, as user data runs). */
    runAs: text()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a user name')
      .optional(),
    spotAllocationStrategy: z
      .enum(['price-capacity-optimized', 'capacity-optimized', 'lowest-price', 'diversified'])
      .default('price-capacity-optimized'),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (!s.imageId && !s.launchTemplate) {
      ctx.addIssue({
        code: 'custom',
        path: ['imageId'],
        message: 'give imageId, or launchTemplate to launch from your own template',
      });
    }
  });
export type Ec2Settings = z.infer<typeof ec2SettingsSchema>;

export interface Ec2ProviderOptions {
  /** Merged into every client's configuration (tests: dummy credentials). */
  clientConfig?: Omit<EC2ClientConfig, 'region' | 'endpoint'>;
  /**
   * Where this farm's fleets launch (each ec2 fleet's region and settings): `list` and
   * `terminate` look there as well as wherever this provider launched since it started, so a
   * restarted manager adopts its instances.
   */
  locations?: () =>
    | Promise<readonly { region: string; settings: unknown }[]>
    | readonly { region: string; settings: unknown }[];
}

interface Location {
  region: string;
  endpoint: string | undefined;
}

const LIVE_STATES = ['pending', 'running', 'shutting-down', 'stopping'];
/** CreateFleet's user data limit is 16 KiB (base64). */
const MAX_USER_DATA = 16_384;
const MAX_LAUNCH = 1000;

export class Ec2Provider implements FleetProvider {
  readonly machineIdPrefix = 'i-';
  readonly kind = 'ec2';
  readonly settingsSchema = ec2SettingsSchema;
  readonly #o: Ec2ProviderOptions;
  readonly #clients = new Map<string, EC2Client>();
  /** Locations launched in since this provider started. */
  readonly #seen = new Map<string, Location>();

  constructor(options: Ec2ProviderOptions = {}) {
    this.#o = options;
  }

  async launch(request: LaunchRequest): Promise<LaunchResult> {
    const settings = parseSettings(request.settings);
    if (!Number.isInteger(request.count) || request.count < 0 || request.count > MAX_LAUNCH) {
      throw new ProviderError(
        'InvalidCount',
        `count: must be a whole number from 0 to ${MAX_LAUNCH}`,
        false,
      );
    }
    const at = this.#location(request.region, settings);
    const client = this.#client(at);
    const launchTag = hash(`${request.farm}\n${request.fleet}\n${request.clientToken}`).slice(
      0,
      40,
    );

    // A retried launch: what the first one started (any state).
    const earlier = await this.#describe(client, [
      { Name: `tag:${FARM_TAG}`, Values: [request.farm] },
      { Name: `tag:${LAUNCH_TAG}`, Values: [launchTag] },
    ]);
    if (earlier.length > 0) return { machines: earlier.map(toMachine), errors: [] };
    if (request.count === 0) return { machines: [], errors: [] };

    const template = await this.#templateVersion(client, request, settings);
    // Instance types are checked by shape here and by EC2 itself (the list grows monthly).
    const overrides: FleetLaunchTemplateOverridesRequest[] = settings.instanceTypes.flatMap((t) => {
      const type = t as _InstanceType;
      return settings.subnets.length > 0
        ? settings.subnets.map((subnet) => ({ InstanceType: type, SubnetId: subnet }))
        : [{ InstanceType: type }];
    });
    const tags = [
      { Key: FARM_TAG, Value: request.farm },
      { Key: FLEET_TAG, Value: request.fleet },
      { Key: LAUNCH_TAG, Value: launchTag },
      { Key: 'Name', Value: `drover ${request.fleet}` },
    ];
    const spot = request.capacity === 'spot';
    const reply = await call(() =>
      client.send(
        new CreateFleetCommand({
          Type: 'instant',
          // EC2's idempotency (its tokens are up to 64 ASCII characters).
          ClientToken: launchTag,
          LaunchTemplateConfigs: [{ LaunchTemplateSpecification: template, Overrides: overrides }],
          TargetCapacitySpecification: {
            TotalTargetCapacity: request.count,
            DefaultTargetCapacityType: spot ? 'spot' : 'on-demand',
            ...(spot
              ? { SpotTargetCapacity: request.count }
              : { OnDemandTargetCapacity: request.count }),
          },
          ...(spot
            ? { SpotOptions: { AllocationStrategy: settings.spotAllocationStrategy } }
            : { OnDemandOptions: { AllocationStrategy: 'lowest-price' } }),
          TagSpecifications: [
            { ResourceType: 'instance', Tags: tags },
            { ResourceType: 'volume', Tags: tags },
          ],
        }),
      ),
    );
    const now = Date.now();
    const machines: Machine[] = (reply.Instances ?? []).flatMap((group) =>
      (group.InstanceIds ?? []).map((id) => ({
        id,
        farm: request.farm,
        fleet: request.fleet,
        state: 'pending' as const,
        launchedAt: now,
        capacity: group.Lifecycle === 'spot' ? ('spot' as const) : ('on-demand' as const),
      })),
    );
    const errors = (reply.Errors ?? []).map((e) => ({
      code: e.ErrorCode ?? 'Unknown',
      message: bounded(e.ErrorMessage ?? e.ErrorCode ?? 'capacity not launched'),
    }));
    return { machines, errors };
  }

  async terminate(farm: string, ids: readonly string[]): Promise<void> {
    const wanted = ids.filter((id) => /^i-[0-9a-f]{8,17}$/.test(id));
    if (wanted.length === 0) return;
    for (const at of await this.#locations()) {
      const client = this.#client(at);
      // Only this farm's instances: another farm's ids are ignored, unknown ones too (asking
      // TerminateInstances for an id that does not exist fails the whole call).
      for (let i = 0; i < wanted.length; i += 200) {
        const found = await this.#describe(client, [
          { Name: `tag:${FARM_TAG}`, Values: [farm] },
          { Name: 'instance-id', Values: wanted.slice(i, i + 200) },
          { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
        ]);
        if (found.length === 0) continue;
        await call(() =>
          client.send(
            new TerminateInstancesCommand({ InstanceIds: found.map((x) => x.InstanceId!) }),
          ),
        );
      }
    }
  }

  async list(farm: string): Promise<Machine[]> {
    const out: Machine[] = [];
    for (const at of await this.#locations()) {
      const found = await this.#describe(this.#client(at), [
        { Name: `tag:${FARM_TAG}`, Values: [farm] },
        { Name: 'instance-state-name', Values: LIVE_STATES },
      ]);
      out.push(...found.map(toMachine));
    }
    return out;
  }

  close(): Promise<void> {
    for (const c of this.#clients.values()) c.destroy();
    this.#clients.clear();
    return Promise.resolve();
  }

  #location(region: string, settings: Ec2Settings): Location {
    const at = { region: settings.region ?? region, endpoint: settings.endpoint };
    const parsed = awsRegion.safeParse(at.region);
    if (!parsed.success) {
      throw new ProviderError(
        'InvalidSettings',
        `settings.region: the fleet's region "${at.region}" is not an AWS region; set settings.region`,
        false,
      );
    }
    this.#seen.set(`${at.region} ${at.endpoint ?? ''}`, at);
    return at;
  }

  async #locations(): Promise<Location[]> {
    const all = new Map(this.#seen);
    for (const l of (await this.#o.locations?.()) ?? []) {
      const s = ec2SettingsSchema.safeParse(l.settings);
      const region = (s.success ? s.data.region : undefined) ?? l.region;
      if (!awsRegion.safeParse(region).success) continue;
      const endpoint = s.success ? s.data.endpoint : undefined;
      all.set(`${region} ${endpoint ?? ''}`, { region, endpoint });
    }
    return [...all.values()];
  }

  #client(at: Location): EC2Client {
    const key = `${at.region} ${at.endpoint ?? ''}`;
    let client = this.#clients.get(key);
    if (!client) {
      client = new EC2Client({
        ...this.#o.clientConfig,
        region: at.region,
        ...(at.endpoint ? { endpoint: at.endpoint } : {}),
      });
      this.#clients.set(key, client);
    }
    return client;
  }

  async #describe(client: EC2Client, filters: Filter[]): Promise<Instance[]> {
    const out: Instance[] = [];
    let token: string | undefined;
    do {
      const page = await call(() =>
        client.send(
          new DescribeInstancesCommand({
            Filters: filters,
            MaxResults: 1000,
            ...(token ? { NextToken: token } : {}),
          }),
        ),
      );
      for (const r of page.Reservations ?? []) out.push(...(r.Instances ?? []));
      token = page.NextToken;
    } while (token);
    return out;
  }

  /** The launch template version that starts this fleet's workers with this boot. */
  async #templateVersion(
    client: EC2Client,
    request: LaunchRequest,
    settings: Ec2Settings,
  ): Promise<{ LaunchTemplateId: string; Version: string }> {
    const userData = Buffer.from(bootScript(request.boot, settings)).toString('base64');
    if (userData.length > MAX_USER_DATA) {
      throw new ProviderError(
        'InvalidSettings',
        'the worker boot script is larger than EC2 user data may be (16 KiB)',
        false,
      );
    }
    const data: RequestLaunchTemplateData = settings.launchTemplate
      ? { UserData: userData }
      : {
          ImageId: settings.imageId,
          UserData: userData,
          // IMDSv2 only: the worker's spot notice watcher and the boot script use it.
          MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
          ...(settings.keyName ? { KeyName: settings.keyName } : {}),
          ...(settings.securityGroups.length > 0
            ? { SecurityGroupIds: settings.securityGroups }
            : {}),
          ...(settings.instanceProfile
            ? { IamInstanceProfile: { Name: settings.instanceProfile } }
            : {}),
        };
    const description = `drover:${hash(JSON.stringify({ data, base: settings.launchTemplate ?? null })).slice(0, 40)}`;
    const templateId =
      settings.launchTemplate?.id ?? (await this.#managedTemplate(client, request));
    // Reuse a version with the same data (the newest 200 are looked at).
    const versions = await call(() =>
      client.send(
        new DescribeLaunchTemplateVersionsCommand({
          LaunchTemplateId: templateId,
          MaxResults: 200,
        }),
      ),
    );
    const same = (versions.LaunchTemplateVersions ?? []).find(
      (v) => v.VersionDescription === description,
    );
    if (same?.VersionNumber !== undefined) {
      return { LaunchTemplateId: templateId, Version: String(same.VersionNumber) };
    }
    const created = await call(() =>
      client.send(
        new CreateLaunchTemplateVersionCommand({
          LaunchTemplateId: templateId,
          VersionDescription: description,
          LaunchTemplateData: data,
          ...(settings.launchTemplate ? { SourceVersion: settings.launchTemplate.version } : {}),
        }),
      ),
    );
    const version = created.LaunchTemplateVersion?.VersionNumber;
    if (version === undefined) {
      throw new ProviderError(
        'Unexpected',
        'CreateLaunchTemplateVersion returned no version',
        true,
      );
    }
    return { LaunchTemplateId: templateId, Version: String(version) };
  }

  /** The provider's template for this farm and fleet, made on first use. */
  async #managedTemplate(client: EC2Client, request: LaunchRequest): Promise<string> {
    const name = `drover-${request.fleet.replace(/[^A-Za-z0-9().\-/_]/g, '_').slice(0, 80)}-${hash(request.farm).slice(0, 10)}`;
    const find = async () => {
      try {
        const found = await client.send(
          new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [name] }),
        );
        return found.LaunchTemplates?.[0]?.LaunchTemplateId;
      } catch (error) {
        if (awsCode(error).startsWith('InvalidLaunchTemplateName.NotFound')) return undefined;
        throw toProviderError(error);
      }
    };
    const existing = await find();
    if (existing) return existing;
    const tags = [
      { Key: FARM_TAG, Value: request.farm },
      { Key: FLEET_TAG, Value: request.fleet },
    ];
    try {
      const created = await client.send(
        new CreateLaunchTemplateCommand({
          LaunchTemplateName: name,
          VersionDescription: 'drover: placeholder (each launch uses its own version)',
          // A first version that launches nothing useful on its own: no user data.
          LaunchTemplateData: {
            MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
          },
          TagSpecifications: [{ ResourceType: 'launch-template', Tags: tags }],
        }),
      );
      const id = created.LaunchTemplate?.LaunchTemplateId;
      if (id) return id;
    } catch (error) {
      // Another manager made it meanwhile.
      if (!awsCode(error).includes('AlreadyExists')) throw toProviderError(error);
    }
    const id = await find();
    if (!id)
      throw new ProviderError('Unexpected', `launch template ${name} could not be made`, true);
    return id;
  }
}

function parseSettings(raw: unknown): Ec2Settings {
  const parsed = ec2SettingsSchema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = ['settings', ...(issue?.path ?? []).map(String)].join('.');
  throw new ProviderError('InvalidSettings', `${field}: ${issue?.message ?? 'invalid'}`, false);
}

function toMachine(i: Instance): Machine {
  const tag = (key: string) => i.Tags?.find((t) => t.Key === key)?.Value ?? '';
  return {
    id: i.InstanceId ?? '',
    farm: tag(FARM_TAG),
    fleet: tag(FLEET_TAG),
    state: stateOf(i.State?.Name),
    launchedAt: i.LaunchTime?.getTime() ?? 0,
    capacity: i.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand',
  };
}

function stateOf(name: string | undefined): MachineState {
  switch (name) {
    case 'pending':
      return 'pending';
    case 'running':
      return 'running';
    case 'shutting-down':
    case 'stopping':
      return 'stopping';
    default:
      return 'stopped';
  }
}

/** A shell word, single-quoted. */
function sh(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The user data: reads the instance id from the instance metadata (IMDSv2), writes the token
 * to a private file, and starts the worker as `<fleet>-<instance id>`. Installs nothing.
 */
export function bootScript(
  boot: WorkerBoot,
  settings: Pick<Ec2Settings, 'droverCommand' | 'runAs'>,
): string {
  if (!/^[A-Za-z0-9_.~+/=-]{8,512}$/.test(boot.token)) {
    // Never echoed: it is the secret.
    throw new ProviderError(
      'InvalidBoot',
      'the fleet worker token has characters a token never has',
      false,
    );
  }
  const list = (xs: readonly string[]) => xs.join(',');
  const args = [
    'worker',
    '--manager',
    sh(list(boot.managerUrls)),
    '--name',
    `${sh(`${boot.fleet}-`)}"$id"`,
    '--region',
    sh(boot.region),
    '--slots',
    String(boot.slots),
    ...(boot.pools.length > 0 ? ['--pools', sh(list(boot.pools))] : []),
    ...(boot.groups.length > 0 ? ['--groups', sh(list(boot.groups))] : []),
    '--token-file',
    '/run/drover/worker-token',
  ];
  const runAs = settings.runAs;
  return [
    '#!/bin/sh',
    '# Drover worker boot (the ec2 fleet provider): installs nothing, starts the worker on the image.',
    'set -eu',
    'imds=http://169.254.169.254/latest',
    // The metadata service may need a moment at boot.
    'get() { curl -sf --retry 10 --retry-connrefused --max-time 5 "$@"; }',
    't=$(get -X PUT -H \'X-aws-ec2-metadata-token-ttl-seconds: 300\' "$imds/api/token")',
    'id=$(get -H "X-aws-ec2-metadata-token: $t" "$imds/meta-data/instance-id")',
    'umask 077',
    'mkdir -p /run/drover',
    "cat > /run/drover/worker-token <<'DROVER_TOKEN_END'",
    boot.token,
    'DROVER_TOKEN_END',
    ...(runAs ? [`chown ${sh(runAs)} /run/drover /run/drover/worker-token`] : []),
    // The worker watches the instance metadata for a spot interruption notice.
    'export DROVER_MACHINE_NOTICE=ec2',
    `exec ${runAs ? `runuser -u ${sh(runAs)} -- ` : ''}${sh(settings.droverCommand)} ${args.join(' ')}`,
    '',
  ].join('\n');
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function bounded(message: string): string {
  return message.length > 500 ? `${message.slice(0, 500)}…` : message;
}

function awsCode(error: unknown): string {
  if (error && typeof error === 'object') {
    const e = error as { name?: unknown; Code?: unknown; code?: unknown };
    for (const c of [e.Code, e.code, e.name]) {
      if (typeof c === 'string' && c && c !== 'Error') return c;
    }
  }
  return 'Unknown';
}

/** Codes worth retrying after a back-off rather than a settings fix. */
const temporaryCodes = [
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'InsufficientInstanceCapacity',
  'InsufficientCapacity',
  'InsufficientHostCapacity',
  'SpotMaxPriceTooLow',
  'MaxSpotInstanceCountExceeded',
  'InternalError',
  'ServiceUnavailable',
  'Unavailable',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'TimeoutError',
];

/**
 * An SDK failure as the scaler sees it: AWS's code and message (bounded; they carry no
 * credentials), temporary or not. Missing credentials are not temporary.
 */
export function toProviderError(error: unknown): ProviderError {
  if (error instanceof ProviderError) return error;
  const code = awsCode(error);
  const message = bounded(error instanceof Error ? error.message : String(error));
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const temporary =
    temporaryCodes.includes(code) || (status !== undefined && status >= 500) || code === 'Unknown';
  return new ProviderError(code, message, temporary && code !== 'CredentialsProviderError');
}

async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw toProviderError(error);
  }
}
