// Synthetic pictures for the demo: one coloured circle or square at a random place on a noisy grey background,
// rendered with sharp (SVG -> raw pixels + noise -> JPEG). The scene knows the object's normalised box, the
// region a question about the object is grounded in.
//
// One object, not several: a tiny model trained for a minute cannot learn to tell a circle from a square in the
// features of a random frozen vision tower, so "the colour of the circle next to a square" stays at chance;
// colour and left/right of a single object are learnable in that budget. Objects are 56-76 px wide (2-3 merged
// tokens): with 40-60 px, the warm-up left left/right at chance for some seeds.
import sharp from 'sharp';

import { mulberry32 } from '../bench/random_weights';
import type { Pcg32 } from '../data/prng';

export const COLOURS = ['red', 'green', 'blue', 'yellow'] as const;
export type Colour = (typeof COLOURS)[number];
export const SHAPES = ['circle', 'square'] as const;
export type Shape = (typeof SHAPES)[number];
export type Side = 'left' | 'right';

const FILL: Record<Colour, string> = { red: '#d62828', green: '#2a9d3f', blue: '#1d4ed8', yellow: '#f2c81d' };

/** Side of the square pictures: 6 x 6 merged tokens of 28 px, so the processor never resizes them. */
export const IMAGE_SIZE = 168;
const MIN_RADIUS = 28;
const MAX_RADIUS = 38;

export interface Scene {
  shape: Shape;
  colour: Colour;
  side: Side;
  /** centre and half-size in pixels */
  cx: number;
  cy: number;
  r: number;
  /** [x0, y0, x1, y1] normalised to [0, 1] (upstream's bbox convention) */
  box: [number, number, number, number];
  /** background grey level */
  background: number;
  noiseSeed: number;
}

/** Uniform integer in [lo, hi]. */
export function randInt(rng: Pcg32, lo: number, hi: number): number {
  return lo + rng.below(hi - lo + 1);
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** A random scene; colour and side can be fixed (the held-out split balances its answers that way). */
export function randomScene(rng: Pcg32, fixed: { colour?: Colour; side?: Side } = {}): Scene {
  const shape = SHAPES[rng.below(SHAPES.length)];
  const colour = fixed.colour ?? COLOURS[rng.below(COLOURS.length)];
  const side: Side = fixed.side ?? (rng.below(2) === 0 ? 'left' : 'right');
  const S = IMAGE_SIZE;
  const r = randInt(rng, MIN_RADIUS, MAX_RADIUS);
  // the whole object inside its half, so "left" / "right" is never ambiguous
  const cx = side === 'left' ? randInt(rng, r + 2, S / 2 - r - 2) : randInt(rng, S / 2 + r + 2, S - r - 2);
  const cy = randInt(rng, r + 2, S - r - 2);
  const box: Scene['box'] = [round3((cx - r) / S), round3((cy - r) / S), round3((cx + r) / S), round3((cy + r) / S)];
  return { shape, colour, side, cx, cy, r, box, background: randInt(rng, 120, 200), noiseSeed: rng.nextU32() };
}

function svg(s: Scene): string {
  const S = IMAGE_SIZE;
  const g = s.background;
  const object =
    s.shape === 'circle'
      ? `<circle cx="${s.cx}" cy="${s.cy}" r="${s.r}" fill="${FILL[s.colour]}"/>`
      : `<rect x="${s.cx - s.r}" y="${s.cy - s.r}" width="${2 * s.r}" height="${2 * s.r}" fill="${FILL[s.colour]}"/>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${S}" height="${S}"><rect width="${S}" height="${S}" fill="rgb(${g},${g},${g})"/>${object}</svg>`;
}

/** The scene as JPEG bytes: the SVG rendering plus +-8 of per-pixel noise (a real photo is never flat). */
export async function renderScene(scene: Scene): Promise<Buffer> {
  const { data, info } = await sharp(Buffer.from(svg(scene))).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const noise = mulberry32(scene.noiseSeed); // fast: one value per byte
  for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(255, data[i] + Math.floor(noise() * 17) - 8));
  return sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}
