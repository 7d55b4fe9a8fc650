// Box -> merged-token indices (method.md §3, Appendix B) and the box rules of issue #5, hand-computed.
import { boxTokenIndices, parseBoxes } from '../../../src/data/boxes';
import { SampleSkip } from '../../../src/data/skips';
import { range } from './helpers';

const idx = (box: [number, number, number, number] | null, grid: [number, number, number]) => Array.from(boxTokenIndices(box, grid));

describe('boxTokenIndices', () => {
  test('Appendix B: [0.382, 0.456, 0.718, 0.656] on grid (1, 26, 36) -> 28 tokens', () => {
    // x0g 13, x1g 26, y0g 11, y1g 18 -> x 6..12, y 5..8 on a 13 x 18 merged grid
    const want = [...range(96, 103), ...range(114, 121), ...range(132, 139), ...range(150, 157)];
    expect(idx([0.382, 0.456, 0.718, 0.656], [1, 26, 36])).toEqual(want);
  });

  test('the whole image covers every merged token', () => {
    expect(idx([0, 0, 1, 1], [1, 4, 6])).toEqual(range(0, 6));
  });

  test('edges round outwards to the 28-px grid', () => {
    // grid (1, 8, 8): merged 4 x 4. x0 = 0.3 -> x0g floor(2.4) = 2 -> x0t 1; x1 = 0.55 -> ceil(4.4) = 5 -> (5+1) div 2 = 3
    // y0 = 0.1 -> floor(0.8) = 0 -> 0; y1 = 0.2 -> ceil(1.6) = 2 -> (2+1) div 2 = 1
    expect(idx([0.3, 0.1, 0.55, 0.2], [1, 8, 8])).toEqual([1, 2]);
  });

  test('a box starting at the right/bottom edge still gets the last column/row', () => {
    // x0 = 0.99 on w = 8: floor(7.92) = 7 -> x0t 3; x1 = 1 -> 8 -> 4; y 0.99..1 -> row 3
    expect(idx([0.99, 0.99, 1, 1], [1, 8, 8])).toEqual([15]);
  });

  test('the dummy box is token 0', () => {
    expect(idx(null, [1, 26, 36])).toEqual([0]);
  });
});

describe('parseBoxes (issue #5 box rules)', () => {
  const reason = (b: unknown[]) => {
    try {
      parseBoxes(b);
    } catch (e) {
      return (e as SampleSkip).reason;
    }
    return 'ok';
  };

  test('boxes are unwrapped from nested single-element lists', () => {
    expect(parseBoxes([[[0.1, 0.2, 0.3, 0.4]], [0, 0, 1, 1]])).toEqual([[0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]]);
  });
  test('an empty bboxes list gives one dummy group; an empty or zero-area box is a dummy', () => {
    expect(parseBoxes([])).toEqual([null]);
    expect(parseBoxes([[], [[]], [0.2, 0.2, 0.2, 0.8], [0.1, 0.5, 0.9, 0.5]])).toEqual([null, null, null, null]);
  });
  test.each([
    [[[0.1, 0.2, 0.3]], 'invalid_box'],
    [[[0.1, 0.2, 0.3, '0.4']], 'invalid_box'],
    [[[[0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]]], 'invalid_box'],
    [[0.5], 'invalid_box'],
    [[[0.1, 0.2, 1.2, 0.5]], 'box_out_of_range'],
    [[[-0.01, 0.2, 0.5, 0.5]], 'box_out_of_range'],
    [[[0.5, 0.2, 0.3, 0.6]], 'box_inverted'],
    [[[0.2, 0.6, 0.3, 0.5]], 'box_inverted'],
    [[[0, 0, 1, 1]], 'ok'],
  ])('%j -> %s', (b, want) => {
    expect(reason(b as unknown[])).toBe(want);
  });
});
