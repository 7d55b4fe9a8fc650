// Normalised boxes -> merged-grid token indices (method.md §3, upstream
// IterableSupervisedDatasetLVR.bbox_to_token_idxs at HEAD), with the box rules of issue #5:
// - an entry is unwrapped from nested single-element lists ([[x0,y0,x1,y1]] -> [x0,y0,x1,y1]) and must then be
//   4 finite numbers (else the sample is skipped: invalid_box), or empty;
// - a coordinate outside [0, 1] skips the sample (box_out_of_range); x1 < x0 or y1 < y0 skips it (box_inverted).
//   Upstream clamps such boxes silently; the issue asks for a counted skip;
// - an empty box, a zero-area box (x1 == x0 or y1 == y0), and an empty `bboxes` list (which upstream turns into
//   one empty group) become the dummy index [0] (B10). §3 alone would give a zero-width box on an odd 14-px
//   boundary one column; the rule ("zero-area -> [0]") wins;
// - every box refers to the FIRST image of the sample and indexes its merged tokens row-major (B9).
import { SampleSkip } from './skips';

/** [x0, y0, x1, y1] normalised, or null for the dummy box */
export type Box = readonly [number, number, number, number] | null;

function unwrap(v: unknown): unknown {
  while (Array.isArray(v) && v.length === 1 && Array.isArray(v[0])) v = v[0];
  return v;
}

/** Checks `bboxes`; returns one entry per group (an empty list gives one dummy group). */
export function parseBoxes(bboxes: readonly unknown[]): Box[] {
  if (bboxes.length === 0) return [null];
  return bboxes.map((raw, i) => {
    const b = unwrap(raw);
    if (Array.isArray(b) && b.length === 0) return null;
    if (!Array.isArray(b) || b.length !== 4 || !b.every((x) => typeof x === 'number' && Number.isFinite(x)))
      throw new SampleSkip('invalid_box', `bboxes[${i}] = ${JSON.stringify(raw)}`);
    const [x0, y0, x1, y1] = b as number[];
    if (!b.every((x: number) => x >= 0 && x <= 1)) throw new SampleSkip('box_out_of_range', `bboxes[${i}] = ${JSON.stringify(raw)}`);
    if (x1 < x0 || y1 < y0) throw new SampleSkip('box_inverted', `bboxes[${i}] = ${JSON.stringify(raw)}`);
    if (x1 === x0 || y1 === y0) return null;
    return [x0, y0, x1, y1] as const;
  });
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);

/**
 * Merged-token indices of `box` in an image of patch grid (t, h, w) (h, w in 14-px patches):
 *   x0g = clamp(floor(x0*w), 0, w-1)   x1g = clamp(ceil(x1*w), 0, w)   (same for y with h)
 *   x0t = x0g div m   x1t = ceil(x1g / m)   (m = merge = 2: (x1g + 1) div 2)
 *   idx = [yy * (w/m) + xx for yy in [y0t, y1t) for xx in [x0t, x1t)]
 * An empty result (or the dummy box) gives [0].
 */
export function boxTokenIndices(box: Box, grid: readonly [number, number, number], merge = 2): Int32Array {
  if (box === null) return Int32Array.of(0);
  const [, h, w] = grid;
  const W2 = Math.floor(w / merge);
  const [x0, y0, x1, y1] = box;
  const x0g = clamp(Math.floor(x0 * w), 0, w - 1), x1g = clamp(Math.ceil(x1 * w), 0, w);
  const y0g = clamp(Math.floor(y0 * h), 0, h - 1), y1g = clamp(Math.ceil(y1 * h), 0, h);
  const x0t = Math.floor(x0g / merge), x1t = Math.floor((x1g + merge - 1) / merge);
  const y0t = Math.floor(y0g / merge), y1t = Math.floor((y1g + merge - 1) / merge);
  if (x1t <= x0t || y1t <= y0t) return Int32Array.of(0);
  const out = new Int32Array((y1t - y0t) * (x1t - x0t));
  let k = 0;
  for (let yy = y0t; yy < y1t; yy++) for (let xx = x0t; xx < x1t; xx++) out[k++] = yy * W2 + xx;
  return out;
}
