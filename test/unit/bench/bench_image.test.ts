import { benchImageRgb, benchImageTokens, checkBenchImageSize } from '../../../src/bench/bench_image';

describe('benchmark image size (--image-size)', () => {
  test('multiples of 28 within bounds pass; others name the rule', () => {
    expect(checkBenchImageSize(448)).toBeUndefined();
    expect(checkBenchImageSize(896)).toBeUndefined();
    for (const bad of [450, 0, 28, 3612, 447.5, Number.NaN]) expect(checkBenchImageSize(bad)).toMatch(/multiple of 28/);
  });
  test('image tokens: one per 28x28 block (448 -> 256, 896 -> 1024)', () => {
    expect(benchImageTokens(448)).toBe(256);
    expect(benchImageTokens(896)).toBe(1024);
  });
  test('pixels are size x size x 3 and the default image is unchanged by the option', () => {
    expect(benchImageRgb(56).length).toBe(56 * 56 * 3);
    expect(benchImageRgb().equals(benchImageRgb(448))).toBe(true);
  });
});
