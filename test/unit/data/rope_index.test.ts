// M-RoPE position ids: hand-worked sequences, and transformers' get_rope_index output stored in the golden
// decoding cases (test/golden/cases/*.json: input_ids, image_grid_thw, position_ids, rope_delta).
import * as fs from 'fs';
import * as path from 'path';

import { mropePositions } from '../../../src/data/rope_index';

const P = 9; // image pad id in the hand-worked sequences
const planes = (r: { positions: Int32Array }, L: number) => [0, 1, 2].map((p) => Array.from(r.positions.subarray(p * L, (p + 1) * L)));

test('text, a 2 x 3 merged image (grid 1 x 4 x 6), text', () => {
  const ids = [1, 2, 3, P, P, P, P, P, P, 4, 5];
  const r = mropePositions(ids, [[1, 4, 6]], P);
  // text 0,1,2; image base 3: t 3, h 3 + row, w 3 + col; max 5 -> text resumes at 6
  expect(planes(r, ids.length)).toEqual([
    [0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7],
    [0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7],
    [0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7],
  ]);
  expect(r.ropeDelta).toBe(8 - 11);
});

test('two images back to back and a tall image (the larger of rows/cols sets the next base)', () => {
  const ids = [7, P, P, P, P, 8, P, P, P];
  // image 0: grid 1 x 2 x 8 -> 1 x 4 merged at base 1 (max 4); text 5; image 1: 3 x 1 merged at base 6 (max 8)
  const r = mropePositions(ids, [[1, 2, 8], [1, 6, 2]], P);
  expect(planes(r, ids.length)).toEqual([
    [0, 1, 1, 1, 1, 5, 6, 6, 6],
    [0, 1, 1, 1, 1, 5, 6, 7, 8],
    [0, 1, 2, 3, 4, 5, 6, 6, 6],
  ]);
  expect(r.ropeDelta).toBe(9 - 9);
});

test('run/grid mismatches are errors', () => {
  expect(() => mropePositions([P, P, P], [[1, 2, 2]], P)).toThrow(/more image-pad runs/);
  expect(() => mropePositions([P, 1], [[1, 4, 4]], P)).toThrow(/needs 4 pads but the sequence ends first/);
  expect(() => mropePositions([P, 1, 2, 3], [[1, 4, 4]], P)).toThrow(/needs 4 consecutive pads, found 1/);
  expect(() => mropePositions([1], [[1, 2, 2]], P)).toThrow(/0 image-pad run\(s\) for 1 image/);
});

describe("transformers' get_rope_index (golden cases)", () => {
  const dir = path.join(__dirname, '../../golden/cases');
  const tokenIds = JSON.parse(fs.readFileSync(path.join(__dirname, '../../golden/token_ids.json'), 'utf8'));
  const pad: number = tokenIds.image_pad;
  const cases = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  test('there are golden cases and an image pad id', () => {
    expect(cases.length).toBeGreaterThanOrEqual(8);
    expect(pad).toBe(372);
  });
  test.each(cases)('%s', (f) => {
    const c = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    const L = c.input_ids.length;
    const r = mropePositions(c.input_ids, c.image_grid_thws ?? [c.image_grid_thw], pad); // several images: all grids
    expect(planes(r, L)).toEqual(c.position_ids);
    expect(r.ropeDelta).toBe(c.rope_delta);
  });
});
