// smart_resize against the vectors of model.md §3.3 (checked against transformers) and test/golden/preprocess.json
// (transformers and qwen-vl-utils, made by test/golden/make_golden.py).
import * as fs from 'fs';
import * as path from 'path';

import { roundHalfEven, smartResize } from '../../src/image/smart_resize';

const DEF = { minPixels: 3136, maxPixels: 12845056 };

describe('roundHalfEven (Python round)', () => {
  test.each([
    [1.5, 2], [2.5, 2], [3.5, 4], [0.5, 0], [2.4999999999999996, 2], [2.5000000000000004, 3], [7, 7],
  ])('round(%p) = %p', (x, r) => expect(roundHalfEven(x)).toBe(r));
});

describe('smart_resize, model.md §3.3 vectors', () => {
  test.each([
    [300, 451, 308, 448], [42, 70, 56, 56], [98, 98, 112, 112], [126, 126, 112, 112], [28, 28, 56, 56],
    [480, 640, 476, 644], [768, 1024, 756, 1036], [1080, 1920, 1092, 1932], [4000, 3000, 4004, 2996],
    [8000, 6000, 4116, 3080], [5000, 5000, 3556, 3556],
  ])('(%p, %p) -> (%p, %p) at the default limits', (h, w, eh, ew) => expect(smartResize(h, w, DEF)).toEqual([eh, ew]));

  test.each([[1080, 1920, 728, 1316], [4000, 3000, 1148, 840]])('(%p, %p) -> (%p, %p) with max_pixels 1280*28*28', (h, w, eh, ew) =>
    expect(smartResize(h, w, { minPixels: 3136, maxPixels: 1280 * 28 * 28 })).toEqual([eh, ew]));
});

describe('smart_resize, golden vectors (qwen-vl-utils variant)', () => {
  const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '../golden/preprocess.json'), 'utf8'));
  const rows: Array<{ height: number; width: number; min_pixels: number; max_pixels: number; hf: number[]; qwen_vl_utils: number[] }> =
    golden.smart_resize;
  test('covers the rows', () => expect(rows.length).toBeGreaterThan(20));
  for (const r of rows) {
    // qwen-vl-utils can return 0 for a side below 14 px in the max-pixels branch; we guard it like transformers
    const want = r.qwen_vl_utils[0] === 0 || r.qwen_vl_utils[1] === 0 ? r.hf : r.qwen_vl_utils;
    test(`(${r.height}, ${r.width}) at [${r.min_pixels}, ${r.max_pixels}] -> ${want}`, () =>
      expect(smartResize(r.height, r.width, { minPixels: r.min_pixels, maxPixels: r.max_pixels })).toEqual(want));
  }
});

describe('smart_resize errors', () => {
  test('aspect ratio above 200', () => expect(() => smartResize(10, 2001, DEF)).toThrow(/aspect ratio 200\.1 .*exceeds 200/));
  test('aspect ratio of exactly 200 is accepted', () => expect(smartResize(10, 2000, DEF)).toEqual([28, 1988]));
  test('empty size', () => expect(() => smartResize(0, 10, DEF)).toThrow(/not a positive integer size/));
  test('inverted limits', () => expect(() => smartResize(10, 10, { minPixels: 10, maxPixels: 5 })).toThrow(/not a valid range/));
});
