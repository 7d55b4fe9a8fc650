// --attention-maps (train-stage2, also stage 1): one PNG per capture showing where the BCM teacher and the DAC
// student look for one box of the batch, over the sample's resized image (the upstream README's "Training
// Attention (Stage 2): Teacher vs Student attention maps during distillation").
//
// Layout: a grid of equal panels on white, 6 px gaps. Row 0 = teacher (BCM), row 1 = student (DAC; absent in
// stage 1). Column 0 = the image itself, columns 1..K = latent query k-1's head-averaged attention over the
// image's merged tokens, blended over the dimmed image. Every panel outlines the box's tokens in magenta.
// Colour scale: per column, 0 (dark blue) to the largest value of that query in either row (red), so teacher and
// student of one query are directly comparable: the student's map turns into the teacher's as distillation works.
import sharp from 'sharp';

import { PatchLayout, pixelsToRgb, RgbImage } from './pixels_to_rgb';
import { heatColour } from './heat_colour';

export interface TrainingAttentionInput {
  /** the sample's first image at its resized (model) size */
  image: RgbImage;
  /** merged-token grid of that image: image.height / 28 x image.width / 28 */
  gridH: number;
  gridW: number;
  /** the box's token indices in that grid (raster order) */
  boxTokens: ArrayLike<number>;
  /** one map per latent query, gridH * gridW values each */
  teacher: Float32Array[];
  /** stage 2: one per query as well; null draws the teacher row alone */
  student: Float32Array[] | null;
}

export const PANEL_GAP = 6;
export const OUTLINE: readonly [number, number, number] = [255, 0, 255];
const OUTLINE_PX = 2;

export { heatColour };

/** Columns [0, n) of each of the K rows of a [K, S] map: the sample's first image out of all its tokens. */
export function firstImageMaps(flat: Float32Array, K: number, n: number): Float32Array[] {
  const S = flat.length / K;
  if (!Number.isInteger(S) || n > S) throw new Error(`training attention: a [${K}, ${S}] map cannot hold ${n} image tokens`);
  return Array.from({ length: K }, (_, q) => flat.subarray(q * S, q * S + n));
}

function check(inp: TrainingAttentionInput): void {
  const { image, gridH, gridW, teacher, student } = inp;
  if (teacher.length === 0) throw new Error('training attention: no latent query maps to draw');
  if (image.rgb.length !== image.width * image.height * 3) throw new Error('training attention: image buffer does not match its size');
  if (student && student.length !== teacher.length)
    throw new Error(`training attention: ${teacher.length} teacher maps but ${student.length} student maps`);
  for (const m of [...teacher, ...(student ?? [])])
    if (m.length !== gridH * gridW) throw new Error(`training attention: a map has ${m.length} values, expected ${gridH}x${gridW}`);
  for (const t of Array.from(inp.boxTokens))
    if (!(t >= 0 && t < gridH * gridW)) throw new Error(`training attention: box token ${t} is outside the ${gridH}x${gridW} grid`);
}

/**
 * Draws the grid into one RGB buffer. `inp.image` must already be at panel size (writeTrainingAttention resizes
 * it); maps are sampled per token cell, so any panel size works.
 */
export function renderTrainingAttention(inp: TrainingAttentionInput): { data: Buffer; width: number; height: number } {
  check(inp);
  const { image, gridH, gridW, teacher, student } = inp;
  const W = image.width, H = image.height, K = teacher.length;
  const rows = student ? [teacher, student] : [teacher];
  const cols = K + 1, gap = PANEL_GAP;
  const outW = cols * W + (cols + 1) * gap, outH = rows.length * H + (rows.length + 1) * gap;
  const out = Buffer.alloc(outW * outH * 3, 255);

  // Token cell of every panel pixel, and the inner border of the box region (pixels of a box cell within
  // OUTLINE_PX of a pixel outside it).
  const cellY = Int32Array.from({ length: H }, (_, y) => Math.min(gridH - 1, Math.floor((y * gridH) / H)));
  const cellX = Int32Array.from({ length: W }, (_, x) => Math.min(gridW - 1, Math.floor((x * gridW) / W)));
  const inBox = new Uint8Array(gridH * gridW);
  for (const t of Array.from(inp.boxTokens)) inBox[t] = 1;
  const boxAt = (x: number, y: number) => x >= 0 && y >= 0 && x < W && y < H && inBox[cellY[y] * gridW + cellX[x]] === 1;
  const outline = new Uint8Array(W * H);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      if (!boxAt(x, y)) continue;
      for (let d = 1; d <= OUTLINE_PX && !outline[y * W + x]; d++)
        if (!boxAt(x - d, y) || !boxAt(x + d, y) || !boxAt(x, y - d) || !boxAt(x, y + d)) outline[y * W + x] = 1;
    }

  const top = teacher.map((m, q) => {
    let hi = 0;
    for (const v of m) if (v > hi && Number.isFinite(v)) hi = v;
    for (const v of student?.[q] ?? []) if (v > hi && Number.isFinite(v)) hi = v;
    return hi > 0 ? hi : 1;
  });
  const panel = (row: number, col: number, pixel: (x: number, y: number, s: number) => [number, number, number]) => {
    const ox = gap + col * (W + gap), oy = gap + row * (H + gap);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const c = outline[y * W + x] ? OUTLINE : pixel(x, y, (y * W + x) * 3);
        const d = ((oy + y) * outW + ox + x) * 3;
        for (let ch = 0; ch < 3; ch++) out[d + ch] = Math.round(c[ch]);
      }
  };
  const px = image.rgb;
  rows.forEach((maps, row) => {
    panel(row, 0, (_x, _y, s) => [px[s], px[s + 1], px[s + 2]]);
    maps.forEach((m, q) =>
      panel(row, q + 1, (x, y, s) => {
        const c = heatColour(m[cellY[y] * gridW + cellX[x]] / top[q]);
        // A dimmed image under the heat colour keeps the content readable under the map.
        return [0.45 * px[s] + 0.55 * c[0], 0.45 * px[s + 1] + 0.55 * c[1], 0.45 * px[s + 2] + 0.55 * c[2]];
      }),
    );
  });
  return { data: out, width: outW, height: outH };
}

/** Panel size: the image scaled so its longer side is `panel` pixels (up or down), aspect kept. */
export function panelSize(width: number, height: number, panel: number): { width: number; height: number } {
  const s = panel / Math.max(width, height);
  return { width: Math.max(1, Math.round(width * s)), height: Math.max(1, Math.round(height * s)) };
}

/** Resizes the image to panels of `panel` px (longer side), renders the grid and writes it as PNG. */
export async function writeTrainingAttention(file: string, inp: TrainingAttentionInput, panel = 160): Promise<void> {
  check(inp);
  const size = panelSize(inp.image.width, inp.image.height, panel);
  const rgb = await sharp(Buffer.from(inp.image.rgb.buffer, inp.image.rgb.byteOffset, inp.image.rgb.byteLength), {
    raw: { width: inp.image.width, height: inp.image.height, channels: 3 },
  })
    .resize(size.width, size.height, { fit: 'fill' })
    .raw()
    .toBuffer();
  const r = renderTrainingAttention({ ...inp, image: { rgb, width: size.width, height: size.height } });
  await sharp(r.data, { raw: { width: r.width, height: r.height, channels: 3 } }).png().toFile(file);
}

/** What a capture needs besides the maps: the batch's pixel rows and grids. */
export interface CaptureSource {
  pixelValues: Float32Array;
  imageGrids: Int32Array;
}

/** One captured box (src/native/trainer.ts BoxAttentionMaps): maps [K, tokens] over its sample's tokens. */
export interface CapturedBox {
  image: number;
  grid: readonly number[];
  tokens: number;
  boxTokens: Int32Array;
  teacher: Float32Array;
  student: Float32Array | null;
}

/**
 * Draws one captured box over its sample's first image, recovered from the batch's pixel_values
 * (pixels_to_rgb.ts: exactly the pixels the model saw, no file access). Box tokens on a later image of the
 * sample cannot occur (boxes index the first image), and the maps' columns past the first image are not drawn.
 */
export async function writeBoxAttention(file: string, batch: CaptureSource, box: CapturedBox, layout: PatchLayout, panel?: number): Promise<void> {
  let firstRow = 0;
  for (let i = 0; i < box.image; i++) firstRow += batch.imageGrids[3 * i] * batch.imageGrids[3 * i + 1] * batch.imageGrids[3 * i + 2];
  const image = pixelsToRgb(batch.pixelValues, firstRow, box.grid, layout);
  const gridH = box.grid[1] / layout.merge, gridW = box.grid[2] / layout.merge, n = gridH * gridW;
  const K = box.teacher.length / box.tokens;
  if (!Number.isInteger(K) || K < 1) throw new Error(`training attention: a teacher map of ${box.teacher.length} values does not fit ${box.tokens} tokens`);
  await writeTrainingAttention(
    file,
    {
      image, gridH, gridW, boxTokens: box.boxTokens,
      teacher: firstImageMaps(box.teacher, K, n),
      student: box.student ? firstImageMaps(box.student, K, n) : null,
    },
    panel,
  );
}
