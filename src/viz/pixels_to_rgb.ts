// The inverse of the image preprocessing's last two steps (model.md §3.5 normalise, §3.6 patchify): a batch's
// pixel_values rows back to the resized uint8 RGB image the model saw, for drawing pictures during training
// without re-reading (and re-resizing) the source file. Exact up to the uint8 rounding: the forward step is
// v = (u8 * rescale - mean) / std in float32, so round((v * std + mean) / rescale) recovers u8.
export interface PatchLayout {
  patch: number; // 14
  merge: number; // 2
  temporalPatch: number; // 2
  mean: [number, number, number];
  std: [number, number, number];
  rescale: number; // 1/255
}

export interface RgbImage {
  rgb: Uint8Array; // height x width x 3
  width: number;
  height: number;
}

/**
 * Image of `grid` = (t, h, w) patches whose rows start at patch row `firstRow` of `pixelValues`. Rows walk the
 * image in merge x merge blocks (raster order), patches inside a block in raster order; a row holds
 * [channel][temporal][i][j]. Only the first temporal slice of the first frame is read (a still image repeats it).
 */
export function pixelsToRgb(pixelValues: Float32Array, firstRow: number, grid: readonly number[], L: PatchLayout): RgbImage {
  const [, gh, gw] = grid;
  const { patch: p, merge: m, temporalPatch: tp } = L;
  const dim = 3 * tp * p * p;
  if (gh % m || gw % m) throw new Error(`pixels to RGB: grid ${gh}x${gw} is not a multiple of the merge size ${m}`);
  if ((firstRow + gh * gw) * dim > pixelValues.length)
    throw new Error(`pixels to RGB: rows ${firstRow}..${firstRow + gh * gw} exceed the ${pixelValues.length / dim} patch rows`);
  const width = gw * p, height = gh * p;
  const rgb = new Uint8Array(width * height * 3);
  const scale = L.std.map((s) => s / L.rescale), offset = L.mean.map((mu) => mu / L.rescale);
  let r = firstRow;
  for (let bh = 0; bh < gh / m; bh++)
    for (let bw = 0; bw < gw / m; bw++)
      for (let mh = 0; mh < m; mh++)
        for (let mw = 0; mw < m; mw++, r++) {
          const y0 = (bh * m + mh) * p, x0 = (bw * m + mw) * p;
          for (let c = 0; c < 3; c++) {
            const src = r * dim + c * tp * p * p;
            for (let i = 0; i < p; i++)
              for (let j = 0; j < p; j++) {
                const u = Math.round(pixelValues[src + i * p + j] * scale[c] + offset[c]);
                rgb[((y0 + i) * width + x0 + j) * 3 + c] = u < 0 ? 0 : u > 255 ? 255 : u;
              }
          }
        }
  return { rgb, width, height };
}
