import { describe, expect, it } from 'vitest';
import type { TaskAssignment } from '../../../core/types.js';
import { taskFixture } from '../task-fixture.js';
import type { LineInfo } from '../types.js';
import { blenderApp } from './index.js';

function task(frames: number[], pluginInfo: TaskAssignment['pluginInfo']): TaskAssignment {
  return taskFixture({ frames, plugin: 'Blender', pluginInfo });
}

describe('Blender argv', () => {
  it('renders a contiguous chunk with -s/-e/-a', () => {
    const [spec] = blenderApp.processes(task([10, 11, 12], { sceneFile: '/shots/a.blend' }));
    expect(spec!.argv).toEqual(['blender', '-b', '/shots/a.blend', '-s', '10', '-e', '12', '-a']);
  });

  it('puts every setting before the render argument, in Blender order', () => {
    const [spec] = blenderApp.processes(
      task([1], {
        sceneFile: '/shots/a.blend',
        executable: '/opt/blender-4.2/blender',
        engine: 'CYCLES',
        outputPath: '/renders/a/frame_####',
        format: 'OPEN_EXR',
        threads: 8,
        extraArguments: ['--cycles-device', 'CUDA'],
      }),
    );
    expect(spec!.argv).toEqual([
      '/opt/blender-4.2/blender',
      '-b',
      '/shots/a.blend',
      '-E',
      'CYCLES',
      '-o',
      '/renders/a/frame_####',
      '-F',
      'OPEN_EXR',
      '-t',
      '8',
      '-s',
      '1',
      '-e',
      '1',
      '--cycles-device',
      'CUDA',
      '-a',
    ]);
  });

  it.each([[[1, 3, 5]], [[3, 2, 1]], [[1, 2, 4]]])(
    'renders a non-contiguous chunk %j with -f',
    (frames) => {
      const [spec] = blenderApp.processes(
        task(frames, { sceneFile: '/a.blend', extraArguments: ['-x', '1'] }),
      );
      expect(spec!.argv).toEqual(['blender', '-b', '/a.blend', '-x', '1', '-f', frames.join(',')]);
    },
  );

  it('refuses negative frames, which Blender would read as relative to the end', () => {
    expect(() => blenderApp.processes(task([-2, -1], { sceneFile: '/a.blend' }))).toThrow(
      expect.objectContaining({ code: 'invalid_input', field: 'frames' }),
    );
  });

  it('refuses bad settings naming the setting', () => {
    expect(() => blenderApp.processes(task([1], { sceneFile: 'rel.blend' }))).toThrow(
      /^pluginInfo\.sceneFile: "rel.blend" is not an absolute path/,
    );
  });
});

function feed(frames: number[], lines: string[]): Array<LineInfo | undefined> {
  const parser = blenderApp.createParser(task(frames, { sceneFile: '/a.blend' }));
  return lines.map((l) => parser.line(l, 'stdout'));
}

describe('Blender output parser', () => {
  it('follows a Cycles render of two frames (Blender 3.6/4.x)', () => {
    // Recorded from `blender -b cube.blend -E CYCLES -s 1 -e 2 -a` (samples set to 128).
    const lines = [
      'Blender 4.1.1 (hash e1743a0317bc built 2024-04-16 00:45:13)',
      "Read blend: '/shots/cube.blend'",
      'Fra:1 Mem:62.55M (Peak 62.88M) | Time:00:00.20 | Mem:0.00M, Peak:0.00M | Scene, ViewLayer | Synchronizing object | Cube',
      'Fra:1 Mem:78.81M (Peak 78.81M) | Time:00:00.81 | Mem:16.62M, Peak:16.62M | Scene, ViewLayer | Updating Device | Writing constant memory',
      'Fra:1 Mem:78.81M (Peak 78.81M) | Time:00:02.11 | Remaining:00:08.24 | Mem:16.62M, Peak:16.62M | Scene, ViewLayer | Sample 32/128',
      'Fra:1 Mem:78.81M (Peak 78.81M) | Time:00:10.35 | Mem:16.62M, Peak:16.62M | Scene, ViewLayer | Sample 128/128',
      'Fra:1 Mem:78.81M (Peak 78.81M) | Time:00:10.35 | Mem:16.62M, Peak:16.62M | Scene, ViewLayer | Finished',
      "Saved: '/renders/cube/frame_0001.png'",
      ' Time: 00:10.52 (Saving: 00:00.08)',
      '',
      'Fra:2 Mem:78.81M (Peak 78.81M) | Time:00:02.05 | Remaining:00:08.20 | Mem:16.62M, Peak:16.62M | Scene, ViewLayer | Sample 64/128',
      "Saved: '/renders/cube/frame_0002.png'",
      '',
      'Blender quit',
    ];
    const infos = feed([1, 2], lines);
    expect(infos[0]).toBeUndefined();
    expect(infos[1]).toBeUndefined();
    expect(infos[2]).toEqual({ status: 'Frame 1: Synchronizing object | Cube' });
    expect(infos[4]).toEqual({ progress: 12.5, status: 'Rendering frame 1, sample 32/128' });
    expect(infos[5]?.progress).toBe(50);
    expect(infos[7]).toEqual({ progress: 50, status: 'Saved /renders/cube/frame_0001.png' });
    expect(infos[8]).toBeUndefined();
    expect(infos[10]).toEqual({ progress: 75, status: 'Rendering frame 2, sample 64/128' });
    expect(infos[11]?.progress).toBe(100);
    expect(infos.some((i) => i?.error !== undefined)).toBe(false);
  });

  it('follows an Eevee render (Blender 3.x and 4.x)', () => {
    const infos = feed(
      [5],
      [
        'Fra:5 Mem:45.67M (Peak 50.12M) | Time:00:00.80 | Rendering 1 / 64 samples',
        'Fra:5 Mem:45.67M (Peak 50.12M) | Time:00:01.90 | Rendering 48 / 64 samples',
        "Saved: '/renders/eevee/0005.png'",
      ],
    );
    expect(infos[0]).toEqual({ progress: 1.6, status: 'Rendering frame 5, sample 1/64' });
    expect(infos[1]?.progress).toBe(75);
    expect(infos[2]?.progress).toBe(100);
  });

  it('reads Cycles tiles from Blender 2.9x', () => {
    const [info] = feed(
      [1],
      [
        'Fra:1 Mem:12.00M (0.00M, Peak 12.00M) | Time:00:01.23 | Remaining:00:05.67 | Mem:1.00M, Peak:1.00M | Scene, RenderLayer | Rendered 3/12 Tiles',
      ],
    );
    expect(info).toEqual({ progress: 25, status: 'Rendering frame 1, tile 3/12' });
  });

  it('never goes past 100% when Blender saves more files than frames (stereo views)', () => {
    const infos = feed([1], ["Saved: '/r/f_L.png'", "Saved: '/r/f_R.png'"]);
    expect(infos.map((i) => i?.progress)).toEqual([100, 100]);
  });

  it.each([
    'Error: Cannot read file "/shots/missing.blend": No such file or directory',
    "Error: File format is not supported in file '/shots/a.txt'",
    'Traceback (most recent call last):',
    'bash: blender: command not found',
    'blender: command not found',
  ])('reports %j as an error', (line) => {
    const [info] = feed([1], [line]);
    expect(info?.error).toBe(line.trim());
  });

  it.each([
    'Error: Not freed memory blocks: 2, total unfreed memory 0.001 MB',
    'Warning: property "foo" not found',
    'Color management: using fallback mode for management',
  ])('does not fail the task for %j', (line) => {
    const [info] = feed([1], [line]);
    expect(info?.error).toBeUndefined();
  });
});
