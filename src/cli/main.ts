import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { VERSION } from '../manager/version.js';
import { dbBackup, dbMigrate, dbStatus } from './commands/db.js';
import { tokenCreate, tokenList, tokenRevoke } from './commands/tokens.js';
import { demoRace, gfsSim } from './commands/demo.js';
import { demoAutoscale } from './commands/demo-autoscale.js';
import { dev } from './commands/dev.js';
import { job, jobAction, jobs, tasks } from './commands/jobs.js';
import { log } from './commands/log.js';
import { manager } from './commands/manager.js';
import { submit } from './commands/submit.js';
import { worker } from './commands/worker.js';
import { events, limits, setLimit, setWorkerEnabled, workers } from './commands/workers.js';
import { reportError } from './errors.js';
import { deadlineCommandMain } from './deadline-main.js';
import { pathsAdd, pathsList, pathsMap, pathsRemove } from './commands/paths.js';
import { plugins, pluginSet, pluginShow, pluginState } from './commands/plugins.js';
import { fleetCommands } from './commands/fleets.js';
import { versionCommands } from './commands/versions.js';

/**
 * The command declarations: flags and help only. Each command is a function taking typed
 * options in `commands/`; errors become exit codes in one place (`errors.ts`).
 */

function int(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}
const collect = (value: string, previous: string[] = []) => [...previous, value];

const program = new Command('drover')
  .description('Drover: a render farm manager for multi-region rendering.')
  .version(VERSION)
  .showHelpAfterError()
  .exitOverride();

/** Adds --url/--token (and --json for read commands) to a command that talks to the manager. */
function remote(cmd: Command, json = true): Command {
  cmd
    .option(
      '--url <urls>',
      'manager address(es), comma-separated (env DROVER_URL; default http://127.0.0.1:8642)',
    )
    .option('--token <token>', 'access token (env DROVER_TOKEN)');
  if (json) cmd.option('--json', 'print JSON');
  return cmd;
}

program
  .command('dev')
  .description(
    'start the miniature render farm: a manager on embedded SQLite and local workers per region',
  )
  .option('--data <dir>', 'data directory', './.drover')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on', int(0, 65535), 8642)
  .option('--regions <list>', 'regions, comma-separated', 'us-west-2,eu-west-2')
  .option('--workers-per-region <n>', 'worker processes per region', int(1, 64), 2)
  .option('--slots <n>', 'task slots per worker', int(1, 64), 1)
  .option(
    '--sync-delay <s>',
    'seconds the simulated global file system takes to sync',
    int(0, 3600),
    3,
  )
  .option('--plugins-dir <dir>', 'also load the event plugins in this folder')
  .option(
    '--apps-dir <dir>',
    'local workers offer the application plugins in <dir>/<Name>.json (env DROVER_APPS_DIR)',
  )
  .option(
    '--output-root <dir>',
    'a folder the monitor may show rendered images from (repeatable; default: the current one)',
    collect,
  )
  .option('--headless', 'do not offer the web monitor')
  .option(
    '--deadline-port <port>',
    "also serve Deadline's Web Service API on this port (Deadline's is 8082)",
    int(0, 65535),
  )
  .option(
    '--autoscale',
    'start no workers: one local fleet per region (max 3) brings them up when work arrives',
  )
  .option(
    '--idle-shutdown <s>',
    'with --autoscale: seconds an idle worker stays before it is stopped',
    int(1, 86_400),
    20,
  )
  .action((o: Parameters<typeof dev>[0]) => dev(o));

program
  .command('manager')
  .description('run the manager: HTTP API, scheduler, house keeping')
  .option('--data <dir>', 'data directory (the SQLite store lives here)', './.drover')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on', int(0, 65535), 8642)
  .option(
    '--db <store>',
    'a SQLite file or a postgres:// URL shared by several managers (env DROVER_DB)',
  )
  .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (with --tls-key)')
  .option('--tls-key <file>', 'the PEM private key for --tls-cert')
  .option('--heartbeat-ms <ms>', 'worker heartbeat interval (default 5000)', int(50, 600_000))
  .option(
    '--lease-ttl-ms <ms>',
    'task lease without heartbeats (default 30000)',
    int(100, 3_600_000),
  )
  .option(
    '--stall-after-ms <ms>',
    'a silent worker is stalled after (default 60000)',
    int(100, 3_600_000),
  )
  .option('--house-keeping-ms <ms>', 'house keeping interval (default 2000)', int(50, 600_000))
  .option(
    '--max-frames-user <n>',
    'most frames in one job of a user token; admins are exempt (default 1000000)',
    int(1, 1_000_000),
  )
  .option(
    '--purge-deleted-after <duration>',
    "delete a deleted job's tasks and logs this long after (e.g. 7d, 12h; default 7d)",
  )
  .option('--plugins-dir <dir>', 'also load the event plugins in this folder')
  .option(
    '--output-root <dir>',
    "a folder the monitor may show rendered images from (repeatable; jobs' output folders inside it)",
    collect,
  )
  .option(
    '--allow-host <name>',
    "a host name clients reach this manager by (repeatable; IP addresses, localhost and this machine's name always work)",
    collect,
  )
  .option(
    '--no-auth',
    'DANGEROUS: accept requests without tokens, every one acting as admin (trusted networks only)',
  )
  .option(
    '--deadline-port <port>',
    "also serve Deadline's Web Service API on this port (Deadline's is 8082)",
    int(0, 65535),
  )
  .option(
    '--deadline-anonymous-user <name>',
    'DANGEROUS: Deadline Web Service requests without credentials act as this user (legacy clients, trusted networks only)',
  )
  .option(
    '--deadline-aux-root <dir>',
    "a folder the Deadline Web Service may copy a user token's AuxFiles from (repeatable; admins: anywhere but the data directory)",
    collect,
  )
  .option('--log-level <level>', 'log level', 'info')
  .action((o: Parameters<typeof manager>[0]) => manager(o));

const dbCmd = program.command('db').description("the store's schema");
for (const [name, description, run] of [
  ['migrate', 'apply pending migrations', dbMigrate],
  ['status', 'show applied and pending migrations', dbStatus],
] as const) {
  dbCmd
    .command(name)
    .description(description)
    .option('--db <store>', 'a SQLite file or a postgres:// URL (env DROVER_DB)')
    .option('--data <dir>', 'data directory (its drover.db when --db is not given)', './.drover')
    .option('--json', 'print JSON')
    .action((o: Parameters<typeof dbMigrate>[0]) => run(o));
}
dbCmd
  .command('backup')
  .description('copy a live SQLite store consistently (managers may keep running)')
  .argument('<file>', 'the backup file to write')
  .option('--db <store>', 'the SQLite file (env DROVER_DB)')
  .option('--data <dir>', 'data directory (its drover.db when --db is not given)', './.drover')
  .option('--json', 'print JSON')
  .action((file: string, o: Parameters<typeof dbBackup>[1]) => dbBackup(file, o));

program
  .command('worker')
  .description('run a render-node agent')
  .option('--manager <urls>', 'manager address(es), comma-separated (env DROVER_URL)')
  .option('--token <token>', 'access token (env DROVER_TOKEN)')
  .option(
    '--token-file <file>',
    'read the token from a file private to this user, mode 600 (env DROVER_TOKEN_FILE)',
  )
  .addOption(
    new Option('--isolation <how>', 'how task processes are kept together and killed')
      .choices(['auto', 'cgroup', 'process-group'])
      .default('auto'),
  )
  .option('--name <name>', 'worker name (default: the host name)')
  .option('--region <region>', 'region this worker renders in', 'default')
  .option('--pools <list>', 'pools in the order served, comma-separated')
  .option('--groups <list>', 'groups, comma-separated')
  .option('--slots <n>', 'tasks at once', int(1, 256), 1)
  .option('--drain-timeout <s>', 'on stop, seconds to let running tasks finish', int(0, 86_400))
  .option(
    '--spool-dir <dir>',
    'where logs and results wait while the manager is unreachable (default <tmp>/drover-worker-<name>)',
  )
  .option('--spool-max-mb <n>', 'most log MiB kept in the spool (default 256)', int(2, 1_048_576))
  .option(
    '--apps-dir <dir>',
    'offer the application plugins in <dir>/<Name>.json besides the built-in ones (env DROVER_APPS_DIR)',
  )
  .option('--log-level <level>', 'log level', 'info')
  .action((o: Parameters<typeof worker>[0]) => worker(o));

remote(
  program
    .command('submit')
    .description('submit a job (for CommandLine, put the command after --)')
    .argument('[command...]', 'CommandLine executable and arguments')
    .option('--plugin <name>', 'application plugin: builtin-render, CommandLine, Blender')
    .option('--frames <list>', 'frame list, e.g. 1-100, 1-100x5, 1,3,7')
    .option('--chunk-size <n>', 'frames per task', int(1, 1_000_000))
    .option('--name <name>', 'job name')
    .option('--batch <name>', 'batch name')
    .option('--user <name>', 'user (default: you)')
    .option('--department <name>', 'department')
    .option('--comment <text>', 'comment')
    .option('--priority <n>', 'priority 0-100 (default 50)', int(0, 100))
    .option('--pool <name>', 'pool')
    .option('--secondary-pool <name>', 'secondary pool')
    .option('--group <name>', 'group')
    .option('--machine-limit <n>', 'most workers at once (0 = none)', int(0, 100_000))
    .option('--allow <workers>', 'only these workers, comma-separated')
    .option('--deny <workers>', 'never these workers, comma-separated')
    .option('--limits <names>', 'limits (licences) the job holds, comma-separated')
    .option('--regions <names>', 'regions the job may render in, comma-separated')
    .option('--depends-on <ids>', 'job ids this job waits for, comma-separated')
    .option('--frame-dependent', 'wait per frame instead of for whole jobs')
    .option('--output-dir <dir>', 'output directory (repeatable)', collect)
    .option('--output-file <name>', 'output filename pattern (repeatable)', collect)
    .option('--info <key=value>', 'plugin setting (repeatable)', collect)
    .option('--extra <key=value>', 'extra info (repeatable)', collect)
    .option('--env <key=value>', 'environment variable for the tasks (repeatable)', collect)
    .option('--suspended', 'submit suspended')
    .option('--timeout <s>', 'task timeout in seconds', int(0, 30 * 86_400))
    .option('--retries <n>', 'retries of a failed task (default 2)', int(0, 100))
    .option('--error-limit <n>', 'errors before the job fails (default 100)', int(0, 100_000))
    .addOption(
      new Option('--on-complete <action>', 'when done').choices(['nothing', 'archive', 'delete']),
    )
    .option('--opt-in <plugins>', 'opt-in event plugins, comma-separated')
    .option(
      '--publish <product>',
      'publish as the next version of this product (renders into its version folder)',
    )
    .option('--job-file <file>', 'JSON job description (flags override it)')
    .option('--wait', 'follow the job with a progress bar; exit non-zero unless it completes'),
).action((command: string[], o: Parameters<typeof submit>[0]) => submit({ ...o, command }));

remote(
  program
    .command('jobs')
    .description('list jobs, newest first')
    .option('--state <states>', 'only these states, comma-separated')
    .option('--user <name>', "only this user's jobs")
    .option('--limit <n>', 'at most this many', int(1, 1000))
    .option('--all', 'include archived and deleted jobs'),
).action((o: Parameters<typeof jobs>[0]) => jobs(o));

remote(program.command('job').description('show one job').argument('<id>')).action(
  (id: string, o: Parameters<typeof job>[1]) => job(id, o),
);
remote(program.command('tasks').description("list a job's tasks").argument('<id>')).action(
  (id: string, o: Parameters<typeof tasks>[1]) => tasks(id, o),
);
remote(
  program
    .command('log')
    .description("print a task's log: JOB:TASK (latest attempt unless --attempt)")
    .argument('<task>', 'JOB:TASK, or JOB')
    .argument('[index]', 'task number when the first argument is a job id')
    .option('--attempt <n>', 'which attempt', int(1, 1_000_000))
    .option('-f, --follow', 'keep printing while the task renders'),
).action((ref: string, index: string | undefined, o: Parameters<typeof log>[2]) =>
  log(ref, index, o),
);

const actions = [
  ['suspend', 'suspend jobs: running tasks are stopped, nothing new starts'],
  ['resume', 'resume suspended jobs'],
  ['requeue', 'requeue jobs (or --tasks 0,3 of one job)'],
  ['fail', 'mark jobs failed'],
  ['delete', 'delete jobs'],
  ['archive', 'archive jobs'],
  ['pend', 'hold jobs pending'],
  ['release', 'release pending jobs'],
] as const;
for (const [action, description] of actions) {
  const cmd = remote(program.command(action).description(description).argument('<ids...>'));
  if (action === 'requeue')
    cmd.option('--tasks <list>', 'only these task numbers, comma-separated');
  cmd.action((ids: string[], o: Parameters<typeof jobAction>[2]) => jobAction(action, ids, o));
}

const workersCmd = program.command('workers').description('list workers, or enable/disable one');
remote(workersCmd.command('list', { isDefault: true }).description('list workers')).action(
  (o: Parameters<typeof workers>[0]) => workers(o),
);
remote(
  workersCmd.command('enable').argument('<name>').description('let a worker take tasks again'),
).action((name: string, o: Parameters<typeof workers>[0]) => setWorkerEnabled(name, true, o));
remote(
  workersCmd.command('disable').argument('<name>').description('stop giving a worker tasks'),
).action((name: string, o: Parameters<typeof workers>[0]) => setWorkerEnabled(name, false, o));

const limitsCmd = program
  .command('limits')
  .description('list limits (licence counters), or set one');
remote(limitsCmd.command('list', { isDefault: true }).description('list limits')).action(
  (o: Parameters<typeof limits>[0]) => limits(o),
);
remote(
  limitsCmd
    .command('set')
    .argument('<name>')
    .argument('<max>', 'most tasks holding it at once', int(0, 1_000_000))
    .description('create or change a limit'),
).action((name: string, max: number, o: Parameters<typeof limits>[0]) => setLimit(name, max, o));

remote(
  program
    .command('events')
    .description('list the event log')
    .option(
      '--after <seq>',
      'only events after this sequence number',
      int(0, Number.MAX_SAFE_INTEGER),
    )
    .option('--limit <n>', 'at most this many', int(1, 1000))
    .option('--type <types>', 'only these event types, comma-separated')
    .option('--job <id>', "only this job's events"),
).action((o: Parameters<typeof events>[0]) => events(o));

remote(program.command('plugins').description('list event plugins')).action(
  (o: Parameters<typeof plugins>[0]) => plugins(o),
);
const pluginCmd = program.command('plugin').description('show or configure an event plugin');
remote(
  pluginCmd.command('show').argument('<name>').description("show a plugin's state and settings"),
).action((name: string, o: Parameters<typeof plugins>[0]) => pluginShow(name, o));
remote(
  pluginCmd
    .command('set')
    .argument('<name>')
    .argument('<settings...>', 'KEY=VALUE pairs')
    .description('change settings (validated)'),
).action((name: string, pairs: string[], o: Parameters<typeof plugins>[0]) =>
  pluginSet(name, pairs, o),
);
remote(
  pluginCmd
    .command('state')
    .argument('<name>')
    .argument('<state>', 'global, opt-in or disabled')
    .description('enable or disable a plugin'),
).action((name: string, state: string, o: Parameters<typeof plugins>[0]) =>
  pluginState(name, state, o),
);

const pathsCmd = program.command('paths').description('path mapping rules (per region and OS)');
remote(pathsCmd.command('list', { isDefault: true }).description('list the rules')).action(
  (o: Parameters<typeof pathsList>[0]) => pathsList(o),
);
remote(
  pathsCmd
    .command('add')
    .argument('<prefix>')
    .argument('<replacement>')
    .option('--region <region>', 'only for workers in this region')
    .addOption(
      new Option('--os <os>', 'only for workers on this OS').choices(['linux', 'darwin', 'win32']),
    )
    .option('--case-insensitive', 'match the prefix in any case')
    .description('add a rule'),
).action((prefix: string, replacement: string, o: Parameters<typeof pathsAdd>[2]) =>
  pathsAdd(prefix, replacement, o),
);
remote(pathsCmd.command('remove').argument('<id>').description('remove a rule')).action(
  (id: string, o: Parameters<typeof pathsList>[0]) => pathsRemove(id, o),
);
remote(
  pathsCmd
    .command('map')
    .argument('<path>')
    .requiredOption('--region <region>', 'the worker region to map for')
    .addOption(new Option('--os <os>', 'the worker OS').choices(['linux', 'darwin', 'win32']))
    .description('show what a path becomes for a worker'),
).action((path: string, o: Parameters<typeof pathsMap>[1]) => pathsMap(path, o));

const tokenCmd = program.command('token').description('access tokens (admin)');
remote(
  tokenCmd
    .command('create')
    .description('create a token; its secret is printed once')
    .requiredOption('--name <name>', 'who or what it is for')
    .requiredOption('--role <role>', 'admin, user, worker or read-only')
    .option(
      '--workers <pattern>',
      'worker tokens: the workers it may act as (render-07, render-*; default * = any)',
    ),
).action((o: Parameters<typeof tokenCreate>[0]) => tokenCreate(o));
remote(tokenCmd.command('list').description('list tokens (never their secrets)')).action(
  (o: Parameters<typeof tokenList>[0]) => tokenList(o),
);
remote(tokenCmd.command('revoke').argument('<id>').description('revoke a token')).action(
  (id: string, o: Parameters<typeof tokenList>[0]) => tokenRevoke(id, o),
);

const demoCmd = program.command('demo').description('demonstrations on a fresh miniature farm');
demoCmd
  .command('race')
  .description(
    'the multi-region output-folder race: the same job with gfs-sync disabled, then global',
  )
  .option(
    '--sync-delay <s>',
    'seconds the simulated global file system takes to sync',
    int(1, 600),
    3,
  )
  .option('--frames <n>', 'frames to render', int(2, 1000), 8)
  .option('--regions <list>', 'regions, comma-separated', 'us-west-2,eu-west-2')
  .option('--workers-per-region <n>', 'workers per region', int(1, 16), 2)
  .option('--data <dir>', 'keep the farms here (default: a temporary folder, removed after)')
  .option('--keep', 'keep the temporary farm folders (they hold tokens, logs and frames)')
  .option('--json', 'print {"disabled": {...}, "global": {...}}')
  .action((o: Parameters<typeof demoRace>[0]) => demoRace(o));
demoCmd
  .command('autoscale')
  .description(
    'autoscaling: a local fleet with no worker brings workers up for a job and stops them after their idle time; prints the figures',
  )
  .option('--tasks <n>', 'tasks of the job', int(1, 200), 6)
  .option('--task-seconds <s>', 'seconds each task runs', int(1, 600), 3)
  .option('--max <n>', "the fleet's max", int(1, 16), 3)
  .option('--idle-shutdown <s>', 'seconds an idle worker stays', int(1, 600), 5)
  .option('--json', 'print the figures as JSON')
  .action((o: Parameters<typeof demoAutoscale>[0]) => demoAutoscale(o));

program
  .command('gfs-sim')
  .description('run the simulated multi-site global file system on its own')
  .requiredOption('--root <dir>', 'its root folder (sites under <root>/sites/<name>)')
  .option('--sites <list>', 'site names (name=id), comma-separated', 'us-west-2,eu-west-2')
  .option(
    '--sync-delay <s>',
    'seconds before a new folder or file reaches the other sites',
    int(0, 3600),
    3,
  )
  .action((o: Parameters<typeof gfsSim>[0]) => gfsSim(o));

program
  .command('deadlinecommand')
  .description(
    "Deadline's deadlinecommand, in its own syntax (JOBINFO PLUGININFO, -SubmitMultipleJobs, -pools, …)",
  )
  .helpOption(false)
  .allowUnknownOption()
  .allowExcessArguments()
  .argument('[args...]', "deadlinecommand's arguments")
  .action(async (_args: string[], _o: unknown, cmd: Command) => {
    process.exitCode = await deadlineCommandMain(cmd.args, { background: false });
  });

fleetCommands(program, remote);
versionCommands(program, remote);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    process.exitCode = reportError(err);
  }
}
