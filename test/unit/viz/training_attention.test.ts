// The --attention-maps drawing: pixel_values back to the resized RGB (against the preprocessing's own resized
// image, which test/unit/image_preprocess.test.ts pins to Pillow), and the panel grid (layout, colour scale, box
// outline) on a synthetic capture whose expected pixels are computed by hand.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';

import { preprocessImage } from '../../../src/image/preprocess';
import { CLIP_MEAN, CLIP_STD } from '../../../src/model/preprocessor_config';
import { PatchLayout, pixelsToRgb } from '../../../src/viz/pixels_to_rgb';
import {
  firstImageMaps, heatColour, OUTLINE, PANEL_GAP, renderTrainingAttention, writeBoxAttention,
} from '../../../src/viz/training_attention';

const IMAGES = path.join(__dirname, '..', '..', 'golden', 'images');
const LAYOUT: PatchLayout = { patch: 14, merge: 2, temporalPatch: 2, mean: CLIP_MEAN, std: CLIP_STD, rescale: 1 / 255 };

describe('pixelsToRgb', () => {
  test('recovers the resized RGB of each image of a concatenated pixel_values', async () => {
    const a = await preprocessImage(path.join(IMAGES, 'odd_97x61.png'), { minPixels: 3136, maxPixels: 12544 });
    const b = await preprocessImage(path.join(IMAGES, 'rgba_90x70.png'), { minPixels: 3136, maxPixels: 9000 });
    const all = new Float32Array(a.pixelValues.length + b.pixelValues.length);
    all.set(a.pixelValues);
    all.set(b.pixelValues, a.pixelValues.length);
    const rowsA = a.grid[1] * a.grid[2];
    for (const [im, first] of [[a, 0], [b, rowsA]] as const) {
      const r = pixelsToRgb(all, first, im.grid, LAYOUT);
      expect([r.width, r.height]).toEqual([im.resized.width, im.resized.height]);
      expect(Buffer.from(r.rgb).equals(Buffer.from(im.rgb))).toBe(true);
    }
  });

  test('rejects rows past the end and grids that are not whole merge blocks', () => {
    expect(() => pixelsToRgb(new Float32Array(4 * 1176), 1, [1, 2, 2], LAYOUT)).toThrow(/exceed/);
    expect(() => pixelsToRgb(new Float32Array(6 * 1176), 0, [1, 3, 2], LAYOUT)).toThrow(/merge size/);
  });
});

describe('renderTrainingAttention', () => {
  // 2 x 3 token grid over a 60 x 40 grey image (cells of 20 x 20 px), K = 2 queries, box = tokens 1 and 4
  // (the middle column).
  const W = 60, H = 40, grey = 100, K = 2;
  const image = { rgb: new Uint8Array(W * H * 3).fill(grey), width: W, height: H };
  const teacher = [Float32Array.from([0, 0.25, 0, 0, 0.75, 0]), Float32Array.from([0, 0.5, 0, 0, 0.5, 0])];
  const student = [new Float32Array(6).fill(1 / 6), Float32Array.from([0.5, 0.1, 0.1, 0.1, 0.1, 0.1])];
  const blend = (t: number) => heatColour(t).map((c) => Math.round(0.45 * grey + 0.55 * c));
  const at = (r: { data: Buffer; width: number }, row: number, col: number, x: number, y: number) => {
    const d = ((PANEL_GAP + row * (H + PANEL_GAP) + y) * r.width + PANEL_GAP + col * (W + PANEL_GAP) + x) * 3;
    return [r.data[d], r.data[d + 1], r.data[d + 2]];
  };

  test('rows teacher / student, column 0 the image, one column per query, shared scale per query', () => {
    const r = renderTrainingAttention({ image, gridH: 2, gridW: 3, boxTokens: [1, 4], teacher, student });
    expect([r.width, r.height]).toEqual([(K + 1) * W + (K + 2) * PANEL_GAP, 2 * H + 3 * PANEL_GAP]);
    expect(at(r, 0, 0, 5, 5)).toEqual([grey, grey, grey]); // image panel, outside the box
    expect(at(r, 1, 0, 5, 5)).toEqual([grey, grey, grey]);
    // Query 0: top = 0.75 (teacher token 4). Teacher token 0 = 0, token 4 = top, token 1 = 1/3 of top.
    expect(at(r, 0, 1, 5, 5)).toEqual(blend(0));
    expect(at(r, 0, 1, 30, 30)).toEqual(blend(1));
    expect(at(r, 0, 1, 30, 10)).toEqual(blend(0.25 / 0.75));
    // Student of query 0 on the same scale: 1/6 everywhere.
    expect(at(r, 1, 1, 5, 5)).toEqual(blend(1 / 6 / 0.75));
    // Query 1: top = 0.5, reached by the teacher inside the box and by the student's token 0.
    expect(at(r, 1, 2, 5, 5)).toEqual(blend(1));
    expect(at(r, 1, 2, 50, 30)).toEqual(blend(0.1 / 0.5));
    // The box outline: the inner 2 px of the middle column, in every panel; not inside it, not outside it.
    for (const [row, col] of [[0, 0], [0, 1], [1, 2]]) {
      expect(at(r, row, col, 20, 10)).toEqual([...OUTLINE]);
      expect(at(r, row, col, 39, 30)).toEqual([...OUTLINE]);
      expect(at(r, row, col, 30, 0)).toEqual([...OUTLINE]);
      expect(at(r, row, col, 30, 39)).toEqual([...OUTLINE]);
      expect(at(r, row, col, 22, 20)).not.toEqual([...OUTLINE]);
      expect(at(r, row, col, 19, 20)).not.toEqual([...OUTLINE]);
    }
  });

  test('stage 1 (no student) draws the teacher row alone', () => {
    const r = renderTrainingAttention({ image, gridH: 2, gridW: 3, boxTokens: [1, 4], teacher, student: null });
    expect(r.height).toBe(H + 2 * PANEL_GAP);
  });

  test('bad inputs are one-line errors', () => {
    expect(() => renderTrainingAttention({ image, gridH: 2, gridW: 3, boxTokens: [6], teacher, student })).toThrow(/outside the 2x3 grid/);
    expect(() => renderTrainingAttention({ image, gridH: 2, gridW: 2, boxTokens: [1], teacher, student })).toThrow(/expected 2x2/);
    expect(() => renderTrainingAttention({ image, gridH: 2, gridW: 3, boxTokens: [1], teacher, student: [student[0]] })).toThrow(/2 teacher maps but 1/);
  });

  test('firstImageMaps keeps the first image columns of each query row', () => {
    const m = firstImageMaps(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 2, 3);
    expect(m.map((x) => Array.from(x))).toEqual([[1, 2, 3], [5, 6, 7]]);
    expect(() => firstImageMaps(new Float32Array(8), 2, 5)).toThrow(/cannot hold 5/);
  });

  test('writeBoxAttention writes a PNG of the expected size from a batch capture', async () => {
    const a = await preprocessImage(path.join(IMAGES, 'odd_97x61.png'), { minPixels: 3136, maxPixels: 12544 });
    const gh = a.grid[1] / 2, gw = a.grid[2] / 2, S = gh * gw;
    const maps = new Float32Array(K * S).fill(1 / S);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vr-attmaps-')), 'step-1.png');
    await writeBoxAttention(file, { pixelValues: a.pixelValues, imageGrids: Int32Array.from(a.grid) },
      { image: 0, grid: a.grid, tokens: S, boxTokens: Int32Array.from([0]), teacher: maps, student: maps }, LAYOUT, 64);
    const meta = await sharp(file).metadata();
    const pw = Math.round((a.resized.width * 64) / Math.max(a.resized.width, a.resized.height));
    const ph = Math.round((a.resized.height * 64) / Math.max(a.resized.width, a.resized.height));
    expect([meta.format, meta.width, meta.height]).toEqual(['png', (K + 1) * pw + (K + 2) * PANEL_GAP, 2 * ph + 3 * PANEL_GAP]);
  });
});
