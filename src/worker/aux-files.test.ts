import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandLineApp } from './apps/command-line/index.js';
import { taskFixture } from './apps/task-fixture.js';
import {
  AUX_DIRECTORY_VARIABLE,
  auxNamesOf,
  fetchAuxFiles,
  prepareAuxFiles,
  resolveAuxTokens,
  type AuxChunk,
} from './aux-files.js';

const ID = '0123456789abcdef0123456789abcdef';

/** A manager that serves `files` in chunks of `chunk` bytes. */
function serving(files: Buffer[], chunk = 4) {
  return (index: number, offset: number): Promise<AuxChunk> => {
    const data = files[index]!;
    return Promise.resolve({
      name: `f${index}`,
      size: data.length,
      offset,
      content: data.subarray(offset, offset + chunk).toString('base64'),
    });
  };
}

describe('worker: auxiliary files', () => {
  it('reads the names a job carries; a bad variable is an error', () => {
    const env = (v: string) => ({ environment: { DROVER_AUX_FILES: v } });
    expect(auxNamesOf({ environment: {} })).toEqual([]);
    expect(auxNamesOf(env(JSON.stringify([`${ID}/scene.ma`, `${ID}/a b.txt`])))).toEqual([
      'scene.ma',
      'a b.txt',
    ]);
    expect(() => auxNamesOf(env('nope'))).toThrow(/JSON list/);
    expect(() => auxNamesOf(env(JSON.stringify([`${ID}/..`])))).toThrow(/bad reference/);
    expect(() => auxNamesOf(env(JSON.stringify([`${ID}/a/b`])))).toThrow(/bad reference/);
  });

  it('fetches every file in chunks into the folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-aux-unit-'));
    const files = [Buffer.from('hello world'), Buffer.alloc(0), Buffer.from('x')];
    const paths = await fetchAuxFiles(['a.txt', 'empty', 'b'], serving(files), dir);
    expect(paths).toEqual([join(dir, 'a.txt'), join(dir, 'empty'), join(dir, 'b')]);
    expect(paths.map((p) => readFileSync(p, 'utf8'))).toEqual(['hello world', '', 'x']);
  });

  it('refuses a chunk that does not follow or overruns, and a name given twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-aux-unit-'));
    const lying = () =>
      Promise.resolve({
        name: 'a',
        size: 2,
        offset: 0,
        content: Buffer.from('abc').toString('base64'),
      });
    await expect(fetchAuxFiles(['a'], lying, dir)).rejects.toThrow(/bad chunk/);
    const stuck = () => Promise.resolve({ name: 'b', size: 5, offset: 0, content: '' });
    await expect(fetchAuxFiles(['b'], stuck, dir)).rejects.toThrow(/ended early/);
    await expect(
      fetchAuxFiles(['c', 'c'], serving([Buffer.from('1'), Buffer.from('2')]), dir),
    ).rejects.toThrow(/EEXIST/);
  });

  it('resolves <AUXFILEn> in text and list settings; an unknown index is an error', () => {
    expect(
      resolveAuxTokens({ Arguments: '-s <AUXFILE0> -x <auxfile1>', list: ['<AUXFILE1>'], n: 3 }, [
        '/t/a.ma',
        '/t/b.py',
      ]),
    ).toEqual({ Arguments: '-s /t/a.ma -x /t/b.py', list: ['/t/b.py'], n: 3 });
    expect(() => resolveAuxTokens({ a: '<AUXFILE2>' }, ['/t/a'])).toThrow(/names no auxiliary/);
  });

  it('readies a task: tokens resolved, processes start in the folder; a failure fails the task', async () => {
    const task = taskFixture({
      plugin: 'CommandLine',
      pluginInfo: { executable: '/bin/cat', arguments: ['<AUXFILE0>'] },
      environment: { DROVER_AUX_FILES: JSON.stringify([`${ID}/scene.ma`]) },
    });
    const ready = await prepareAuxFiles(task, () => commandLineApp, serving([Buffer.from('s')]));
    const [spec] = ready.findApp('CommandLine').processes(ready.task);
    const folder = spec!.cwd!;
    expect(spec!.argv).toEqual(['/bin/cat', join(folder, 'scene.ma')]);
    expect(spec!.env?.[AUX_DIRECTORY_VARIABLE]).toBe(folder);
    expect(readFileSync(join(folder, 'scene.ma'), 'utf8')).toBe('s');
    await ready.cleanup();
    expect(existsSync(folder)).toBe(false);

    const failing = await prepareAuxFiles(
      task,
      () => commandLineApp,
      () => Promise.reject(new Error('the manager said no')),
    );
    expect(() => failing.findApp('CommandLine')).toThrow(
      /cannot fetch the job's auxiliary files: the manager said no/,
    );
    await failing.cleanup();
  });
});
