// Decode + smart_resize + native resize/normalise/patchify against transformers' Pillow-backend processor:
// test/unit/fixtures/images.json (every Pillow mode, made by fixtures/make_image_fixtures.py) and
// test/golden/preprocess.json (made by test/golden/make_golden.py). Hashes are sha256 over raw little-endian
// float32 / uint8 bytes, so a single differing bit fails.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

import { decodeImage } from '../../src/image/decode';
import { preprocessImage, preprocessRgb } from '../../src/image/preprocess';

const FIX = path.join(__dirname, 'fixtures');
const GOLDEN = path.join(__dirname, '../golden');
const sha = (a: ArrayBufferView) => crypto.createHash('sha256').update(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

interface Limit {
  min_pixels: number; max_pixels: number; resized_hw: [number, number]; resized_rgb_sha256: string; pixel_values_sha256: string;
  grid?: number[]; image_grid_thw?: number[]; pixel_values_first4?: number[];
}

describe('decode: Pillow mode rules (fixtures/images.json)', () => {
  const fx = JSON.parse(fs.readFileSync(path.join(FIX, 'images.json'), 'utf8'));
  for (const e of fx.images as Array<{ image: string; mode: string; width: number; height: number; rgb_sha256: string; limits: Record<string, Limit> }>) {
    test(`${e.image} (${e.mode}) decodes to the reference RGB`, async () => {
      const d = await decodeImage(path.join(FIX, 'images', e.image));
      expect(d.mode).toBe(e.mode);
      expect([d.width, d.height]).toEqual([e.width, e.height]);
      expect(sha(d.rgb)).toBe(e.rgb_sha256);
    });
    test(`${e.image}: pixel_values equal transformers' at ${Object.keys(e.limits).join(', ')}`, async () => {
      for (const [, L] of Object.entries(e.limits)) {
        const r = await preprocessImage(path.join(FIX, 'images', e.image), { minPixels: L.min_pixels, maxPixels: L.max_pixels });
        expect([r.resized.height, r.resized.width]).toEqual(L.resized_hw);
        expect(r.grid).toEqual(L.grid);
        expect(sha(r.rgb)).toBe(L.resized_rgb_sha256);
        expect(Array.from(r.pixelValues.subarray(0, 4))).toEqual(L.pixel_values_first4!.map(Math.fround));
        expect(sha(r.pixelValues)).toBe(L.pixel_values_sha256);
      }
    });
  }
});

describe('preprocess: golden vectors (test/golden/preprocess.json)', () => {
  const g = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'preprocess.json'), 'utf8'));
  for (const im of g.images as Array<{ image: string; size_wh: [number, number]; rgb_sha256: string; limits: Record<string, Limit> }>) {
    test(`${im.image}`, async () => {
      const file = path.join(GOLDEN, im.image);
      const d = await decodeImage(file);
      expect([d.width, d.height]).toEqual(im.size_wh);
      expect(sha(d.rgb)).toBe(im.rgb_sha256);
      for (const L of Object.values(im.limits)) {
        const r = await preprocessImage(fs.readFileSync(file), { minPixels: L.min_pixels, maxPixels: L.max_pixels });
        expect([r.resized.height, r.resized.width]).toEqual(L.resized_hw);
        expect(r.grid).toEqual(L.image_grid_thw);
        expect(r.original).toEqual({ width: im.size_wh[0], height: im.size_wh[1] });
        expect(sha(r.rgb)).toBe(L.resized_rgb_sha256);
        expect(sha(r.pixelValues)).toBe(L.pixel_values_sha256);
      }
    });
  }
});

describe('preprocess: layout and formula on a hand-made image', () => {
  test('patch rows follow 2x2 merge blocks, (c, t, y, x) inside a row, frame duplicated', async () => {
    // 56x28 (W x H) image whose red channel encodes the column and green the row: gh = 2, gw = 4 patches.
    const W = 56, H = 28;
    const rgb = new Uint8Array(W * H * 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) rgb.set([x, y, 7], (y * W + x) * 3);
    const r = await preprocessRgb(rgb, W, H, { minPixels: 28 * 28, maxPixels: 10000 });
    expect(r.grid).toEqual([1, 2, 4]);
    expect(r.pixelValues.length).toBe(8 * 1176);
    const norm = (u: number, c: number) => {
      const mean = [0.48145466, 0.4578275, 0.40821073], std = [0.26862954, 0.26130258, 0.27577711];
      return Math.fround(Math.fround(Math.fround(u / 255) - Math.fround(mean[c])) / Math.fround(std[c]));
    };
    // expected patch (py, px) for each row: block (0,0): TL (0,0), TR (0,1), BL (1,0), BR (1,1); block (0,1): (0,2) ...
    const order = [[0, 0], [0, 1], [1, 0], [1, 1], [0, 2], [0, 3], [1, 2], [1, 3]];
    order.forEach(([py, px], row) => {
      for (const [c, t, i, j] of [[0, 0, 0, 0], [0, 1, 3, 5], [1, 0, 13, 2], [1, 1, 13, 2], [2, 1, 6, 6]]) {
        const v = r.pixelValues[row * 1176 + c * 392 + t * 196 + i * 14 + j];
        const u = c === 0 ? px * 14 + j : c === 1 ? py * 14 + i : 7;
        expect(v).toBe(norm(u, c));
      }
    });
  });

  test('an image that needs no resize is only normalised (rgb passes through)', async () => {
    const rgb = new Uint8Array(56 * 56 * 3).map((_, i) => (i * 31) & 255);
    const r = await preprocessRgb(rgb, 56, 56, { minPixels: 3136, maxPixels: 3136 });
    expect(r.resized).toEqual({ width: 56, height: 56 });
    expect(Buffer.from(r.rgb).equals(Buffer.from(rgb))).toBe(true);
  });
});

describe('decode/preprocess errors', () => {
  const img = (n: string) => path.join(FIX, 'images', n);
  test.each(['truncated.jpg', 'truncated.png', 'not_an_image.png'])('%s is refused with one line naming it', async (n) => {
    const err = await preprocessImage(img(n)).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toContain(img(n));
    expect(err!.message).not.toContain('\n');
  });
  test('a missing file', async () => {
    await expect(decodeImage(img('nope.png'))).rejects.toThrow(/cannot read image .*nope\.png: ENOENT/);
  });
  test('no EXIF rotation: an orientation-6 JPEG keeps its stored size', async () => {
    const d = await decodeImage(img('exif_rotated.jpg'));
    expect([d.width, d.height]).toEqual([37, 23]);
  });
  test('an input pixel cap given by the caller', async () => {
    await expect(preprocessImage(img('rgb.png'), { maxInputPixels: 800 })).rejects.toThrow(/rgb\.png has 37x23 = 851 pixels, more than the limit of 800/);
  });
  test('an aspect ratio above 200', async () => {
    const rgb = new Uint8Array(201 * 1 * 3);
    await expect(preprocessRgb(rgb, 201, 1)).rejects.toThrow(/aspect ratio 201\.0 \(201x1\) exceeds 200/);
    const png = await import('sharp').then((s) => s.default(Buffer.from(rgb), { raw: { width: 201, height: 1, channels: 3 } }).png().toBuffer());
    await expect(preprocessImage(png, { name: 'strip.png' })).rejects.toThrow(/^image strip\.png: image aspect ratio 201\.0/);
  });
});
