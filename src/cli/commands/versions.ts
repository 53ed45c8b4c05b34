import { resolve } from 'node:path';
import type { Command } from 'commander';
import { routes } from '../../api/routes.js';
import type { Version } from '../../core/versions.js';
import { VERSION_KEY } from '../../events/plugins/publish/config.js';
import { connect, type ConnectionOptions } from '../connection.js';
import { formatTime, printJson, printTable } from '../output.js';

interface VersionsOptions extends ConnectionOptions {
  json?: boolean;
  all?: boolean;
  limit?: number;
}

interface DecisionOptions extends ConnectionOptions {
  json?: boolean;
  comment?: string;
}

interface PublishOptions extends ConnectionOptions {
  json?: boolean;
  product: string;
  comment?: string;
}

function frameSummary(v: Version): string {
  return v.representations
    .map((r) => (r.frames ? `${r.pattern} [${r.frames}]` : r.pattern))
    .join(', ');
}

/** `drover versions [PRODUCT] [--all]`: approved versions (all with --all), newest first. */
export async function listVersions(product: string | undefined, o: VersionsOptions): Promise<void> {
  const client = connect(o);
  const { versions } = await client.call(routes.listVersions, {
    query: {
      ...(product ? { product } : {}),
      all: o.all ? 'true' : 'false',
      ...(o.limit ? { limit: o.limit } : {}),
    },
  });
  if (o.json) return printJson(versions);
  if (versions.length === 0) {
    process.stdout.write(
      o.all ? 'no versions\n' : 'no approved versions (--all shows every status)\n',
    );
    return;
  }
  printTable(
    ['ID', 'PRODUCT', 'VERSION', 'STATUS', 'BY', 'SUBMITTED', 'JOB', 'FOLDER'],
    versions.map((v) => [
      v.id,
      v.product,
      v.name,
      v.status,
      v.submittedBy,
      formatTime(v.submittedAt),
      v.jobId ?? '',
      v.folder,
    ]),
  );
}

function printVersion(v: Version): void {
  const lines: [string, string][] = [
    ['version', `${v.product} ${v.name} (${v.id})`],
    ['status', v.status],
    ['folder', v.folder],
    ['submitted', `${formatTime(v.submittedAt)} by ${v.submittedBy || '-'}`],
    ['comment', v.comment],
    ['job', v.jobId ?? '-'],
    ['review job', v.reviewJobId ?? '-'],
    ['representations', frameSummary(v) || '-'],
    ['missing frames', v.missingFrames.join(',') || '-'],
    ['thumbnail', v.thumbnail ?? '-'],
    ['movie', v.movie ?? '-'],
    ['scene', v.scene ? `${v.scene.path} (sha256 ${v.scene.sha256}, from ${v.scene.source})` : '-'],
    ['error', v.error || '-'],
    [
      'reviewed',
      v.reviewedAt ? `${formatTime(v.reviewedAt)} by ${v.reviewedBy}: ${v.reviewComment}` : '-',
    ],
  ];
  printTable(['FIELD', 'VALUE'], lines);
}

export async function showVersion(id: string, o: DecisionOptions): Promise<void> {
  const { version } = await connect(o).call(routes.getVersion, { params: { id } });
  if (o.json) return printJson(version);
  printVersion(version);
}

export async function decideVersion(
  id: string,
  decision: 'approve' | 'reject',
  o: DecisionOptions,
): Promise<void> {
  const def = decision === 'approve' ? routes.approveVersion : routes.rejectVersion;
  const { version } = await connect(o).call(def, {
    params: { id },
    body: { comment: o.comment ?? '' },
  });
  if (o.json) return printJson(version);
  process.stdout.write(`${version.product} ${version.name}: ${version.status}\n`);
}

/** `drover publish DIR --product P`: an existing folder becomes the next version, uncopied. */
export async function publishFolder(dir: string, o: PublishOptions): Promise<void> {
  const { version } = await connect(o).call(routes.publishFolder, {
    body: { folder: resolve(dir), product: o.product, comment: o.comment ?? '' },
  });
  if (o.json) return printJson(version);
  process.stdout.write(
    `published ${version.product} ${version.name} (${version.id}): ${version.status}${version.reviewJobId ? `, review job ${version.reviewJobId}` : ''}\n`,
  );
  if (version.error) process.stdout.write(`  ${version.error}\n`);
}

/** Declares the versions commands on `program`; `remote` adds --url/--token/--json. */
export function versionCommands(
  program: Command,
  remote: (cmd: Command, json?: boolean) => Command,
): void {
  remote(
    program
      .command('versions')
      .description('list published versions, newest first (approved only unless --all)')
      .argument('[product]', 'a product path, e.g. show/seq010/sh010/lightingMain')
      .option('--all', 'every status: rendering, pending review, rejected, failed, incomplete')
      .option('--limit <n>', 'at most this many', (v) => Number(v)),
  ).action((product: string | undefined, o: VersionsOptions) => listVersions(product, o));

  const version = program.command('version').description('show, approve or reject a version');
  remote(version.command('show').description('show one version').argument('<id>')).action(
    (id: string, o: DecisionOptions) => showVersion(id, o),
  );
  for (const decision of ['approve', 'reject'] as const) {
    remote(
      version
        .command(decision)
        .description(`${decision} a version (its submitter or an admin)`)
        .argument('<id>')
        .option('--comment <text>', 'why'),
    ).action((id: string, o: DecisionOptions) => decideVersion(id, decision, o));
  }

  remote(
    program
      .command('publish')
      .description(
        'publish an existing folder of rendered images as the next version of a product (nothing is copied)',
      )
      .argument('<dir>', 'the folder (inside the publish roots)')
      .requiredOption('--product <path>', 'the product, e.g. show/seq010/sh010/lightingMain')
      .option('--comment <text>', 'comment'),
  ).action((dir: string, o: PublishOptions) => publishFolder(dir, o));
}

/** How long `drover submit --publish --wait` follows the version after its job completed. */
const VERSION_WAIT_MS = 10 * 60_000;

/**
 * After a published job completed: follows its version until the publish plugin has scanned
 * it and its review job has run (it leaves `rendering`), and says where it stands.
 */
export async function waitForVersion(
  client: ReturnType<typeof connect>,
  job: { id: string; extraInfo: Record<string, string> },
  json: boolean,
): Promise<void> {
  const id = job.extraInfo[VERSION_KEY];
  if (!id) return;
  const deadline = Date.now() + VERSION_WAIT_MS;
  let { version } = await client.call(routes.getVersion, { params: { id } });
  while (version.status === 'rendering' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    ({ version } = await client.call(routes.getVersion, { params: { id } }));
  }
  if (json) return printJson(version);
  process.stderr.write(
    `version ${version.product} ${version.name} (${version.id}): ${version.status}${version.error ? ` (${version.error})` : ''}\n`,
  );
}
