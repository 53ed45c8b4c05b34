import { describe, expect, it } from 'vitest';
import { DroverError } from './errors.js';
import { prepareSubmission } from './submission.js';

/** The error a submission is refused with (as the API answers it: 400 naming a field). */
function refusal(input: Record<string, unknown>): DroverError {
  try {
    prepareSubmission({ plugin: 'CommandLine', pluginInfo: { executable: 'echo' }, ...input });
  } catch (err) {
    if (err instanceof DroverError) return err;
    throw err;
  }
  throw new Error(`accepted: ${JSON.stringify(input)}`);
}

const NUL = 'a\u0000b';
const LONE_SURROGATE = 'a\ud800b';

describe('submission text', () => {
  it.each<[Record<string, unknown>, string]>([
    [{ name: NUL }, 'name'],
    [{ user: NUL }, 'user'],
    [{ batchName: NUL }, 'batchName'],
    [{ comment: NUL }, 'comment'],
    [{ pool: NUL }, 'pool'],
    [{ group: NUL }, 'group'],
    [{ limits: [NUL] }, 'limits.0'],
    [{ regions: ['eu', NUL] }, 'regions.1'],
    [{ dependencies: [NUL] }, 'dependencies.0'],
    [{ frames: '1,\u00002' }, 'frames'],
    [{ outputFilenames: [NUL] }, 'outputFilenames.0'],
    [{ extraInfo: { k: NUL } }, 'extraInfo.k'],
    [{ pluginInfo: { executable: 'echo', arguments: ['-x', NUL] } }, 'pluginInfo.arguments.1'],
    [{ pluginInfo: { executable: NUL } }, 'pluginInfo.executable'],
    [{ name: LONE_SURROGATE }, 'name'],
    [{ extraInfo: { k: LONE_SURROGATE } }, 'extraInfo.k'],
  ])('refuses NUL and lone surrogates: %j', (input, field) => {
    const err = refusal(input);
    expect(err.code).toBe('invalid_input');
    expect(err.field).toBe(field);
    expect(err.message).toMatch(/NUL|Unicode/);
  });

  it('keeps ordinary Unicode', () => {
    const { submission } = prepareSubmission({
      plugin: 'CommandLine',
      pluginInfo: { executable: 'echo' },
      name: 'shot 010 — ショット 🎬',
    });
    expect(submission.name).toBe('shot 010 — ショット 🎬');
  });
});

describe('submission environment', () => {
  it('accepts portable names and keeps the values', () => {
    const { submission } = prepareSubmission({
      plugin: 'CommandLine',
      pluginInfo: { executable: 'echo' },
      environment: { PATH: '/opt/bin:/usr/bin', _x1: '', OCIO: '/cfg/a b.ocio', A: 'x=y' },
    });
    expect(submission.environment).toEqual({
      PATH: '/opt/bin:/usr/bin',
      _x1: '',
      OCIO: '/cfg/a b.ocio',
      A: 'x=y',
    });
  });

  it.each<[string, string]>([
    ['A=B', 'environment.A=B'],
    ['1ABC', 'environment.1ABC'],
    ['a-b', 'environment.a-b'],
    ['É', 'environment.É'],
    // Field names with spaces or dots are quoted, so the path stays readable.
    ['has space', 'environment."has space"'],
    ['A.B', 'environment."A.B"'],
  ])('refuses the name %j, naming %j', (name, field) => {
    const err = refusal({ environment: { OK: '1', [name]: 'x' } });
    expect(err.field).toBe(field);
    expect(err.message).toMatch(/letters, digits and _/);
  });

  it.each(['DROVER_TOKEN', 'DROVER_WORKER', 'drover_token', 'Drover_Lease'])(
    "refuses %j: it would override the runner's own variables",
    (name) => {
      const err = refusal({ environment: { [name]: 'x' } });
      expect(err.field).toBe(`environment.${name}`);
      expect(err.message).toMatch(/DROVER_/);
    },
  );

  it('refuses NUL in a value, naming the variable', () => {
    const err = refusal({ environment: { RENDER_ROOT: '/a\u0000/b' } });
    expect(err.field).toBe('environment.RENDER_ROOT');
    expect(err.message).toMatch(/NUL/);
  });
});

describe('dependency resume flags', () => {
  it("default to off, as Deadline's ResumeOnFailed/DeletedDependencies", () => {
    const { submission } = prepareSubmission({
      plugin: 'CommandLine',
      pluginInfo: { executable: 'echo' },
    });
    expect(submission.resumeOnFailedDependencies).toBe(false);
    expect(submission.resumeOnDeletedDependencies).toBe(false);
  });

  it('are booleans', () => {
    expect(refusal({ resumeOnFailedDependencies: 'yes' }).field).toBe('resumeOnFailedDependencies');
  });
});

describe('submission frames', () => {
  it('keeps the frame text as submitted and parses Deadline syntax', () => {
    const { submission, frames } = prepareSubmission({
      plugin: 'CommandLine',
      pluginInfo: { executable: 'echo' },
      frames: '1, 3, 5 10-20by5',
    });
    expect(submission.frames).toBe('1, 3, 5 10-20by5');
    expect(frames).toEqual([1, 3, 5, 10, 15, 20]);
  });
});
