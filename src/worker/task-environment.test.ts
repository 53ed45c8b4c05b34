import { describe, expect, it } from 'vitest';
import { AGENT_ONLY_VARIABLES, taskEnvironment } from './task-environment.js';

const runner = { DROVER_JOB_ID: 'j1', DROVER_WORKER: 'w1' };

describe('taskEnvironment', () => {
  it('passes the worker environment on without its credentials and settings', () => {
    const inherited = {
      PATH: '/usr/bin',
      HOME: '/home/render',
      DROVER_TOKEN: 'drv_secret',
      DROVER_TOKEN_FILE: '/etc/drover/token',
      DROVER_URL: 'http://manager:8642',
      DROVER_DB: 'postgres://drover:password@db/drover',
    };
    const { env } = taskEnvironment({ inherited, runner });
    expect(env).toEqual({ PATH: '/usr/bin', HOME: '/home/render', ...runner });
    for (const name of AGENT_ONLY_VARIABLES) expect(env).not.toHaveProperty(name);
  });

  it("keeps the runner's DROVER_* values over the job's and the plugin's", () => {
    const { env, ignored } = taskEnvironment({
      inherited: { DROVER_WORKER: 'inherited' },
      job: { DROVER_WORKER: 'evil', 'DROVER_WORKER=x': 'y', SHOT: 'sh010' },
      plugin: { DROVER_JOB_ID: 'other', BLENDER_USER_CONFIG: '/cfg' },
      runner,
    });
    expect(env).toEqual({ SHOT: 'sh010', BLENDER_USER_CONFIG: '/cfg', ...runner });
    expect(ignored.map((i) => i.name).sort()).toEqual([
      'DROVER_JOB_ID',
      'DROVER_WORKER',
      'DROVER_WORKER=x',
    ]);
  });

  it('lets a job set a variable the worker only inherited', () => {
    const { env } = taskEnvironment({
      inherited: { OCIO: '/a.ocio', DROVER_TOKEN: 'drv_secret' },
      job: { OCIO: '/b.ocio' },
      runner,
    });
    expect(env.OCIO).toBe('/b.ocio');
    expect(env.DROVER_TOKEN).toBeUndefined();
  });
});
