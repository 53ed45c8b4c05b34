import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { basename, join } from 'node:path';
import { routes } from '../../api/routes.js';
import { DroverError } from '../../core/errors.js';
import type { JobSubmissionInput } from '../../core/job-spec.js';
import type { Job } from '../../core/types.js';
import type { DroverClient } from '../../client/index.js';
import { inDeadlineTerms, mapJobInfo } from '../../compat/deadline/job-info.js';
import { deadlineJob } from '../../compat/deadline/job-object.js';
import { DEADLINE_VERSION } from '../../compat/deadline/lookups.js';
import {
  AUX_CHUNK_BYTES,
  MAX_AUX_BYTES_PER_JOB,
  MAX_AUX_FILES_PER_JOB,
} from '../../manager/aux-files.js';
import { VERSION } from '../../manager/version.js';
import { connect } from '../connection.js';

/**
 * `deadlinecommand` for pipelines that shell out to Deadline's: the submission forms and job
 * commands they use, against a Drover manager (`DROVER_URL`, `DROVER_TOKEN` or
 * `DROVER_TOKEN_FILE`, as every `drover` command). Output is what clients parse:
 * `Result=Success` and `JobID=<id>` on lines of their own, LF endings, ids without spaces;
 * a failure prints `Result=Failure` and the reason, and the exit code is not 0.
 */

/** Most bytes of one info file or argument file. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

/** Reads a text file as Deadline's submitters write it: UTF-8, or UTF-16 with its BOM. */
export function readDeadlineText(path: string): string {
  let bytes: Buffer;
  try {
    if (statSync(path).size > MAX_FILE_BYTES) {
      throw new DroverError('too_large', `${path} is larger than 4 MiB`);
    }
    bytes = readFileSync(path);
  } catch (err) {
    if (err instanceof DroverError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw bad(`cannot read ${path} (${code === 'ENOENT' ? 'no such file' : code})`);
  }
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    const swapped = Buffer.from(bytes.subarray(2));
    swapped.swap16();
    return swapped.toString('utf16le');
  }
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    return bytes.subarray(3).toString('utf8');
  }
  return bytes.toString('utf8');
}

/**
 * An info file: one `Key=Value` per line, split at the first `=` (values may hold `=`),
 * whitespace around both trimmed; blank lines and lines without `=` are skipped; the last
 * line may lack its newline.
 */
export function parseInfo(textContent: string): Record<string, string> {
  const info: Record<string, string> = {};
  for (const line of textContent.split(/\r?\n|\r/)) {
    const at = line.indexOf('=');
    if (at <= 0) continue;
    const key = line.slice(0, at).trim();
    if (key !== '') info[key] = line.slice(at + 1).trim();
  }
  return info;
}

export interface DeadlineCommandIo {
  /** Everything the command prints (LF line endings). */
  out: (line: string) => void;
  /** The manager client (tests pass one; default from the environment). */
  client?: DroverClient;
  /** The manager's address, for the "Submitting to Repository" line. */
  url?: string;
}

interface JobFiles {
  jobInfo: string;
  pluginInfo: string;
  aux: string[];
}

/** Parses the command line into what to do; throws a DroverError telling what is wrong. */
function expandArgumentFile(args: string[]): string[] {
  // One argument that is a file and not an option: Deadline's argument file, a token a line.
  if (args.length === 1 && !args[0]!.startsWith('-')) {
    return readDeadlineText(args[0]!)
      .split(/\r?\n|\r/)
      .map((l) => l.trim())
      .filter((l) => l !== '');
  }
  return args;
}

const usage =
  'usage: deadlinecommand JOBINFO PLUGININFO [AUX…] | -SubmitMultipleJobs [-dependent] -job JOBINFO PLUGININFO [AUX…] … | -SubmitMultipleJobsV2 -jsonfilepath FILE | -SubmitCommandLineJob -executable X [-arguments A] [-frames F] … | -pools | -groups | -GetJob ID | -SuspendJob ID | -ResumeJob ID | -RequeueJob ID | -DeleteJob ID';

function bad(message: string): DroverError {
  return new DroverError('invalid_input', message);
}

async function submit(
  client: DroverClient,
  jobInfo: Record<string, unknown>,
  pluginInfo: Record<string, unknown>,
  aux: string[],
  dependsOn: string | readonly string[] | undefined,
  out: (line: string) => void,
): Promise<Job> {
  const { submission, ignored } = mapJobInfo(jobInfo, pluginInfo);
  if (aux.length > 0) {
    out(`Submitting ${aux.length} auxiliary file${aux.length === 1 ? '' : 's'}.`);
    submission.auxFiles = await uploadAuxFiles(client, aux);
  } else {
    out('No auxiliary files to submit.');
  }
  // As Deadline's: without UserName, the job is the submitting account's.
  if (submission.user === undefined) submission.user = userInfo().username;
  for (const key of ignored) out(`Warning: Key-value pair not supported: ${key}`);
  const extra =
    dependsOn === undefined ? [] : typeof dependsOn === 'string' ? [dependsOn] : dependsOn;
  if (extra.length > 0) {
    submission.dependencies = [
      ...((submission.dependencies as string[] | undefined) ?? []),
      ...extra,
    ];
  }
  try {
    return await client.submitJob(submission as JobSubmissionInput);
  } catch (err) {
    throw inDeadlineTerms(err);
  }
}

/**
 * Uploads auxiliary files (Deadline's deadlinecommand sends them with the job): regular files
 * only, at most 64 files and 64 MiB together, in chunks of 1 MiB. Returns their references.
 */
async function uploadAuxFiles(client: DroverClient, paths: readonly string[]): Promise<string[]> {
  if (paths.length > MAX_AUX_FILES_PER_JOB) {
    throw bad(`at most ${MAX_AUX_FILES_PER_JOB} auxiliary files per job`);
  }
  let total = 0;
  for (const path of paths) {
    let st;
    try {
      st = statSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw bad(`cannot read ${path} (${code === 'ENOENT' ? 'no such file' : code})`);
    }
    if (!st.isFile()) throw bad(`${path} is not a regular file`);
    total += st.size;
  }
  if (total > MAX_AUX_BYTES_PER_JOB) {
    throw new DroverError(
      'too_large',
      `the auxiliary files hold ${total} bytes; at most ${MAX_AUX_BYTES_PER_JOB} per job`,
    );
  }
  const refs: string[] = [];
  for (const path of paths) {
    const fd = openSync(path, 'r');
    try {
      const name = basename(path.replace(/\\/g, '/'));
      const buf = Buffer.alloc(AUX_CHUNK_BYTES);
      let ref: string | undefined;
      let offset = 0;
      for (;;) {
        const n = readSync(fd, buf, 0, AUX_CHUNK_BYTES, null);
        if (n === 0 && ref !== undefined) break;
        if (offset + n > MAX_AUX_BYTES_PER_JOB) throw bad(`${path} grew while being sent`);
        const content = buf.subarray(0, n).toString('base64');
        const { auxFile } = await client.call(routes.uploadAuxFile, {
          body: ref === undefined ? { name, content } : { name, content, ref, offset },
        });
        ref = auxFile.ref;
        offset = auxFile.size;
        if (n === 0) break;
      }
      refs.push(ref);
    } finally {
      closeSync(fd);
    }
  }
  return refs;
}

/** The jobs of `-SubmitMultipleJobsV2`'s JSON file. */
function multipleJobsOf(
  textContent: string,
  file: string,
): (JobFiles & { dependencies: string[] })[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(textContent);
  } catch (err) {
    throw bad(`${file}: not valid JSON (${(err as Error).message.slice(0, 120)})`);
  }
  const jobs = (parsed as { Jobs?: unknown } | null)?.Jobs;
  if (!Array.isArray(jobs) || jobs.length === 0)
    throw bad(`${file}: "Jobs" must be a non-empty list`);
  if (jobs.length > 100) throw bad(`${file}: at most 100 jobs`);
  const strings = (v: unknown, where: string): string[] => {
    if (v === undefined || v === null) return [];
    const list = typeof v === 'string' ? v.split(',') : v;
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
      throw bad(`${where} must be a list of strings`);
    }
    return list.map((x) => x.trim()).filter((x) => x !== '');
  };
  return jobs.map((j: unknown, i) => {
    const o = (j ?? {}) as Record<string, unknown>;
    const jobInfo = o.JobInfoFilePath;
    const pluginInfo = o.PluginInfoFilePath;
    if (typeof jobInfo !== 'string' || typeof pluginInfo !== 'string') {
      throw bad(`${file}: Jobs.${i} needs JobInfoFilePath and PluginInfoFilePath`);
    }
    return {
      jobInfo,
      pluginInfo,
      aux: strings(o.AuxiliaryFilePaths ?? o.AuxFiles, `Jobs.${i}.AuxiliaryFilePaths`),
      dependencies: strings(o.JobDependencies, `Jobs.${i}.JobDependencies`),
    };
  });
}

function printSubmitted(job: Job, out: (line: string) => void): void {
  out('Result=Success');
  out(`JobID=${job.id}`);
  out('The job was submitted successfully.');
}

function filesOf(tokens: string[], where: string): JobFiles {
  const [jobInfo, pluginInfo, ...aux] = tokens;
  if (!jobInfo || !pluginInfo) throw bad(`${where} needs a job info file and a plugin info file`);
  return { jobInfo, pluginInfo, aux };
}

/** Runs one `deadlinecommand` invocation; returns the exit code. */
export async function runDeadlineCommand(
  rawArgs: string[],
  io: DeadlineCommandIo,
): Promise<number> {
  const out = io.out;
  try {
    const args = expandArgumentFile(rawArgs);
    const client = io.client ?? connect({});
    const url = io.url ?? process.env.DROVER_URL ?? 'http://127.0.0.1:8642';
    const banner = () => {
      out(`Deadline Command ${DEADLINE_VERSION} (Drover ${VERSION})`);
      out(`Submitting to Repository: ${url}`);
    };
    const first = args[0];
    if (first === undefined) throw bad(usage);
    const command = first.startsWith('-') ? first.slice(1).toLowerCase() : '';
    const idArg = () => {
      const id = args[1]?.trim();
      if (!id) throw bad(`${first} needs a job id`);
      return id;
    };

    switch (command) {
      case '': {
        const files = filesOf(args, 'a submission');
        banner();
        const job = await submit(
          client,
          parseInfo(readDeadlineText(files.jobInfo)),
          parseInfo(readDeadlineText(files.pluginInfo)),
          files.aux,
          undefined,
          out,
        );
        printSubmitted(job, out);
        return 0;
      }
      case 'submitmultiplejobs': {
        let dependent = false;
        const jobs: string[][] = [];
        for (const token of args.slice(1)) {
          const t = token.toLowerCase();
          if (t === '-dependent') dependent = true;
          else if (t === '-job') jobs.push([]);
          else if (jobs.length === 0) throw bad(`unexpected ${token}: each job starts with -job`);
          else jobs[jobs.length - 1]!.push(token);
        }
        if (jobs.length === 0) throw bad('-SubmitMultipleJobs needs at least one -job');
        const files = jobs.map((j, i) => filesOf(j, `-job ${i + 1}`));
        banner();
        let previous: Job | undefined;
        for (const f of files) {
          const job: Job = await submit(
            client,
            parseInfo(readDeadlineText(f.jobInfo)),
            parseInfo(readDeadlineText(f.pluginInfo)),
            f.aux,
            dependent ? previous?.id : undefined,
            out,
          );
          printSubmitted(job, out);
          previous = job;
        }
        return 0;
      }
      case 'submitmultiplejobsv2': {
        // -SubmitMultipleJobsV2 -jsonfilepath FILE: {"Jobs": [{JobInfoFilePath,
        // PluginInfoFilePath, AuxiliaryFilePaths?, JobDependencies: ["index://0", id…]}]}
        const at = args.findIndex((a) => a.toLowerCase() === '-jsonfilepath');
        const file = at >= 0 ? args[at + 1] : undefined;
        if (!file) throw bad('-SubmitMultipleJobsV2 needs -jsonfilepath FILE');
        const jobs = multipleJobsOf(readDeadlineText(file), file);
        banner();
        const submitted: Job[] = [];
        for (const [i, j] of jobs.entries()) {
          const dependencies = j.dependencies.map((d) => {
            const m = /^index:\/\/(\d+)$/i.exec(d);
            if (!m) return d;
            const earlier = submitted[Number(m[1])];
            if (!earlier) throw bad(`Jobs.${i}.JobDependencies: ${d} names no earlier job`);
            return earlier.id;
          });
          const job: Job = await submit(
            client,
            parseInfo(readDeadlineText(j.jobInfo)),
            parseInfo(readDeadlineText(j.pluginInfo)),
            j.aux,
            dependencies,
            out,
          );
          printSubmitted(job, out);
          submitted.push(job);
        }
        return 0;
      }
      case 'submitcommandlinejob': {
        const flags = new Map<string, string>();
        const props: string[] = [];
        for (let i = 1; i < args.length; i += 2) {
          const name = args[i]!.toLowerCase();
          const value = args[i + 1];
          if (!name.startsWith('-') || value === undefined)
            throw bad(`expected -option value at ${args[i]}`);
          if (name === '-prop') props.push(value);
          else flags.set(name.slice(1), value);
        }
        const executable = flags.get('executable');
        if (!executable) throw bad('-SubmitCommandLineJob needs -executable');
        const jobInfo: Record<string, unknown> = {
          Plugin: 'CommandLine',
          Name: flags.get('name') ?? 'Command Line Job',
          Frames: flags.get('frames') ?? '0',
        };
        const keys: Record<string, string> = {
          chunksize: 'ChunkSize',
          pool: 'Pool',
          group: 'Group',
          priority: 'Priority',
          department: 'Department',
          comment: 'Comment',
          initialstatus: 'InitialStatus',
        };
        for (const [flag, key] of Object.entries(keys)) {
          const v = flags.get(flag);
          if (v !== undefined) jobInfo[key] = v;
        }
        for (const p of props) {
          const at = p.indexOf('=');
          if (at <= 0) throw bad(`-prop ${p}: expected Key=Value`);
          jobInfo[p.slice(0, at).trim()] = p.slice(at + 1).trim();
        }
        const pluginInfo: Record<string, unknown> = {
          Executable: executable,
          Arguments: flags.get('arguments') ?? '',
        };
        const startup = flags.get('startupdirectory');
        if (startup) pluginInfo.StartupDirectory = startup;
        banner();
        printSubmitted(await submit(client, jobInfo, pluginInfo, [], undefined, out), out);
        return 0;
      }
      case 'pools':
      case 'groups': {
        const workers = await client.listWorkers();
        const names = new Set(workers.flatMap((w) => (command === 'pools' ? w.pools : w.groups)));
        names.delete('none');
        for (const n of ['none', ...[...names].sort()]) out(n);
        return 0;
      }
      case 'getjob': {
        const job = deadlineJob(await client.getJob(idArg()));
        const { Props: props, ...top } = job as { Props: Record<string, unknown> };
        for (const [k, v] of [...Object.entries(top), ...Object.entries(props)]) {
          out(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
        }
        return 0;
      }
      case 'suspendjob':
      case 'resumejob':
      case 'requeuejob':
      case 'deletejob': {
        const action = (
          {
            suspendjob: 'suspend',
            resumejob: 'resume',
            requeuejob: 'requeue',
            deletejob: 'delete',
          } as const
        )[command];
        await client.jobAction(idArg(), action);
        out('Result=Success');
        return 0;
      }
      default:
        throw bad(`${first} is not supported by Drover's deadlinecommand\n${usage}`);
    }
  } catch (err) {
    out('Result=Failure');
    out(err instanceof Error ? err.message : String(err));
    return err instanceof DroverError && err.code === 'invalid_input' ? 2 : 1;
  }
}

/**
 * `deadlinecommandbg`: the same, its output written to `dsubmitoutput.txt` (and the exit
 * code to `dsubmitexitcode.txt`) in the folder `-outputfiles DIR` names, or the temp folder.
 */
export async function runDeadlineCommandBackground(
  rawArgs: string[],
  io: Omit<DeadlineCommandIo, 'out'>,
): Promise<number> {
  const args = [...rawArgs];
  let dir = tmpdir();
  const at = args.findIndex((a) => a.toLowerCase() === '-outputfiles');
  if (at >= 0) {
    const given = args[at + 1];
    if (given === undefined) {
      process.stderr.write('-outputfiles needs a folder\n');
      return 2;
    }
    dir = given;
    args.splice(at, 2);
  }
  const lines: string[] = [];
  const code = await runDeadlineCommand(args, { ...io, out: (l) => lines.push(l) });
  writeFileSync(join(dir, 'dsubmitoutput.txt'), lines.map((l) => `${l}\n`).join(''));
  writeFileSync(join(dir, 'dsubmitexitcode.txt'), `${code}\n`);
  return code;
}
