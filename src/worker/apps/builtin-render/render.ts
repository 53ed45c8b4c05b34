import type { BuiltinRenderScene } from '../../../core/app-settings.js';

/**
 * Drover's built-in renderer: a small CPU renderer with real, frame-dependent pictures, so
 * a farm can be tried (and tested end to end) without installing a DCC. Pure: the same
 * options always give the same bytes (sub-pixel positions come from a fixed sequence, not
 * from Math.random), which makes a re-rendered frame comparable with the first one.
 */
export interface RenderOptions {
  scene: BuiltinRenderScene;
  frame: number;
  width: number;
  height: number;
  /** Samples per pixel; more samples smooth the edges. */
  samples: number;
}

type Rgb = [number, number, number];
type SceneShader = (x: number, y: number) => Rgb;

/** Renders one frame as RGBA bytes, row by row from the top (`width * height * 4`). */
export function renderFrame(options: RenderOptions): Buffer {
  const { width, height, samples } = options;
  const shade = shaders[options.scene](options.frame, width, height);
  const offsets = sampleOffsets(samples);
  const rgba = Buffer.alloc(width * height * 4);
  for (let py = 0; py < height; py++) {
    for (let px = 0; px < width; px++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (const [ox, oy] of offsets) {
        const c = shade(px + ox, py + oy);
        r += c[0];
        g += c[1];
        b += c[2];
      }
      const i = (py * width + px) * 4;
      rgba[i] = toByte(r / offsets.length);
      rgba[i + 1] = toByte(g / offsets.length);
      rgba[i + 2] = toByte(b / offsets.length);
      rgba[i + 3] = 255;
    }
  }
  return rgba;
}

/**
 * Sub-pixel sample positions in [0, 1)²: the pixel centre for one sample, otherwise the R2
 * low-discrepancy sequence (Roberts 2018), which spreads any count of samples evenly.
 */
function sampleOffsets(samples: number): Array<[number, number]> {
  if (samples <= 1) return [[0.5, 0.5]];
  const g = 1.324717957244746; // the plastic number
  const a1 = 1 / g;
  const a2 = 1 / (g * g);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < samples; i++) out.push([(0.5 + a1 * i) % 1, (0.5 + a2 * i) % 1]);
  return out;
}

/** Linear colour to an sRGB-ish byte (gamma 2.2). */
function toByte(linear: number): number {
  const v = Math.pow(Math.min(Math.max(linear, 0), 1), 1 / 2.2);
  return Math.round(v * 255);
}

const shaders: Record<
  BuiltinRenderScene,
  (frame: number, width: number, height: number) => SceneShader
> = {
  spheres: spheresScene,
  mandelbrot: mandelbrotScene,
};

// ---------------------------------------------------------------------------------------
// spheres: three spheres orbiting over a checkered floor, ray-marched with soft shadows.
// One orbit takes 96 frames (4 s at 24 fps).

interface Sphere {
  x: number;
  y: number;
  z: number;
  r: number;
  color: Rgb;
}

function spheresScene(frame: number, width: number, height: number): SceneShader {
  const t = (frame / 96) * 2 * Math.PI;
  const spheres: Sphere[] = [0, 1, 2].map((k) => {
    const a = t + (k * 2 * Math.PI) / 3;
    return {
      x: Math.cos(a) * 1.6,
      y: 0.6 + 0.35 * Math.abs(Math.sin(t * 2 + k)),
      z: Math.sin(a) * 1.6,
      r: 0.6,
      color: (
        [
          [0.9, 0.2, 0.15],
          [0.15, 0.7, 0.25],
          [0.2, 0.35, 0.9],
        ] as const
      )[k] as Rgb,
    };
  });
  spheres.push({ x: 0, y: 0.9, z: 0, r: 0.9, color: [0.85, 0.85, 0.8] });

  // Camera on a fixed spot looking at the centre.
  const eye: Rgb = [0, 2.2, -5.5];
  const forward = normalize([0 - eye[0], 0.7 - eye[1], 0 - eye[2]]);
  const right = normalize(cross([0, 1, 0], forward));
  const up = cross(forward, right);
  const light = normalize([-0.6, 1, -0.5]);
  const aspect = width / height;

  /** Distance to the nearest surface and what it is (-1 = floor). */
  function distance(px: number, py: number, pz: number): [number, number] {
    let best = py; // the floor is the plane y = 0
    let id = -1;
    for (let i = 0; i < spheres.length; i++) {
      const s = spheres[i]!;
      const dx = px - s.x;
      const dy = py - s.y;
      const dz = pz - s.z;
      const d = Math.sqrt(dx * dx + dy * dy + dz * dz) - s.r;
      if (d < best) {
        best = d;
        id = i;
      }
    }
    return [best, id];
  }

  function shadow(px: number, py: number, pz: number): number {
    let k = 1;
    let t = 0.05;
    for (let i = 0; i < 24 && t < 8; i++) {
      const [d] = distance(px + light[0] * t, py + light[1] * t, pz + light[2] * t);
      if (d < 0.002) return 0.15;
      k = Math.min(k, (8 * d) / t);
      t += Math.max(d, 0.05);
    }
    return 0.15 + 0.85 * Math.min(Math.max(k, 0), 1);
  }

  return (x, y) => {
    const u = ((2 * x) / width - 1) * aspect;
    const v = 1 - (2 * y) / height;
    const dir = normalize([
      forward[0] * 1.6 + right[0] * u + up[0] * v,
      forward[1] * 1.6 + right[1] * u + up[1] * v,
      forward[2] * 1.6 + right[2] * u + up[2] * v,
    ]);
    const sky: Rgb = [0.35 + 0.25 * v, 0.5 + 0.25 * v, 0.85];
    let t = 0;
    for (let i = 0; i < 80 && t < 40; i++) {
      const px = eye[0] + dir[0] * t;
      const py = eye[1] + dir[1] * t;
      const pz = eye[2] + dir[2] * t;
      const [d, id] = distance(px, py, pz);
      if (d < 0.001 * t + 0.0005) {
        let normal: Rgb;
        let albedo: Rgb;
        if (id < 0) {
          normal = [0, 1, 0];
          const check = (Math.floor(px) + Math.floor(pz)) & 1;
          albedo = check ? [0.8, 0.8, 0.8] : [0.25, 0.25, 0.3];
        } else {
          const s = spheres[id]!;
          normal = normalize([px - s.x, py - s.y, pz - s.z]);
          albedo = s.color;
        }
        const lambert = Math.max(0, dot(normal, light));
        const lit =
          0.2 +
          0.8 *
            lambert *
            shadow(px + normal[0] * 0.01, py + normal[1] * 0.01, pz + normal[2] * 0.01);
        const fog = Math.exp(-0.04 * t);
        return [
          albedo[0] * lit * fog + sky[0] * (1 - fog),
          albedo[1] * lit * fog + sky[1] * (1 - fog),
          albedo[2] * lit * fog + sky[2] * (1 - fog),
        ];
      }
      t += d;
    }
    return sky;
  };
}

function dot(a: Rgb, b: Rgb): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

function cross(a: Rgb, b: Rgb): Rgb {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

function normalize(a: Rgb): Rgb {
  const l = Math.hypot(a[0], a[1], a[2]) || 1;
  return [a[0] / l, a[1] / l, a[2] / l];
}

// ---------------------------------------------------------------------------------------
// mandelbrot: a zoom into the seahorse valley, 4% deeper every frame, smooth colouring.

function mandelbrotScene(frame: number, width: number, height: number): SceneShader {
  const centreX = -0.743643887037151;
  const centreY = 0.13182590420533;
  // Frames far past ~800 reach the limit of double precision; clamp so they still render.
  const depth = Math.min(Math.max(frame, 0), 800);
  const scale = (3.2 * Math.pow(0.96, depth)) / width;
  const maxIterations = Math.min(96 + depth * 2, 1000);
  return (x, y) => {
    const cx = centreX + (x - width / 2) * scale;
    const cy = centreY + (y - height / 2) * scale;
    let zx = 0;
    let zy = 0;
    let i = 0;
    let zx2 = 0;
    let zy2 = 0;
    while (i < maxIterations && zx2 + zy2 < 256) {
      zy = 2 * zx * zy + cy;
      zx = zx2 - zy2 + cx;
      zx2 = zx * zx;
      zy2 = zy * zy;
      i++;
    }
    if (i >= maxIterations) return [0, 0, 0];
    // Smooth iteration count, so bands do not show.
    const smooth = i + 1 - Math.log2(Math.log2(zx2 + zy2) / 2);
    const s = smooth * 0.08 + frame * 0.02;
    return [
      0.5 + 0.5 * Math.cos(6.2832 * (s + 0.0)),
      0.5 + 0.5 * Math.cos(6.2832 * (s + 0.15)),
      0.5 + 0.5 * Math.cos(6.2832 * (s + 0.3)),
    ];
  };
}
