// --attention-map: one panel per latent step, the step's attention over the image tokens (mean over heads and
// layers) drawn as a heatmap over the resized image — the upstream README's inference visualisation.
import sharp from 'sharp';

import { heatColour } from './heat_colour';

export interface AttentionMapInput {
  rgb: Uint8Array; // resized image, HWC RGB
  width: number;
  height: number;
  gridH: number; // merged-token grid (height / 28)
  gridW: number;
  maps: Float32Array[]; // one per latent step, gridH * gridW values in raster order
}

/** Renders the panels into one RGB buffer: columns of up to 4 panels, 8 px gaps, white background. */
export function renderAttentionPanels(inp: AttentionMapInput): { data: Buffer; width: number; height: number } {
  const { width: W, height: H, gridH, gridW, maps } = inp;
  if (maps.length === 0) throw new Error('attention map: no latent steps ran, so there is nothing to draw');
  if (inp.rgb.length !== W * H * 3) throw new Error('attention map: image buffer does not match its size');
  for (const m of maps)
    if (m.length !== gridH * gridW) throw new Error(`attention map: a step has ${m.length} values, expected ${gridH * gridW}`);
  const cols = Math.min(4, maps.length);
  const rows = Math.ceil(maps.length / cols);
  const gap = 8;
  const outW = cols * W + (cols + 1) * gap;
  const outH = rows * H + (rows + 1) * gap;
  const out = Buffer.alloc(outW * outH * 3, 255);
  maps.forEach((m, k) => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of m) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const span = hi > lo ? hi - lo : 1;
    const ox = gap + (k % cols) * (W + gap);
    const oy = gap + Math.floor(k / cols) * (H + gap);
    for (let y = 0; y < H; y++) {
      const gy = Math.min(gridH - 1, Math.floor((y * gridH) / H));
      for (let x = 0; x < W; x++) {
        const gx = Math.min(gridW - 1, Math.floor((x * gridW) / W));
        const c = heatColour((m[gy * gridW + gx] - lo) / span);
        const s = (y * W + x) * 3;
        const d = ((oy + y) * outW + ox + x) * 3;
        // 50/50 blend of a dimmed image and the heat colour keeps the content readable under the map.
        for (let ch = 0; ch < 3; ch++) out[d + ch] = Math.round(0.45 * inp.rgb[s + ch] + 0.55 * c[ch]);
      }
    }
  });
  return { data: out, width: outW, height: outH };
}

export async function writeAttentionMap(path: string, inp: AttentionMapInput): Promise<void> {
  const r = renderAttentionPanels(inp);
  await sharp(r.data, { raw: { width: r.width, height: r.height, channels: 3 } }).png().toFile(path);
}
