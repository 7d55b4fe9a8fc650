// PCG32 against the reference generator's published output (pcg32-demo: pcg32_srandom_r(42, 54)), and the
// Fisher-Yates permutations against an independent implementation (Python, run by hand once; the values are
// pasted here).
import { Pcg32, seededPermutation } from '../../../src/data/prng';

test('PCG32(42, 54) gives the reference sequence', () => {
  const r = new Pcg32(42, 54);
  const got = Array.from({ length: 6 }, () => r.nextU32());
  expect(got).toEqual([0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]);
});

test('below(bound) rejects the biased low range and reduces modulo the bound', () => {
  // bound 2^31 + 1: threshold = (2^32 - bound) % bound = 2^31 - 1; 0xa15c02b7 >= threshold -> 0xa15c02b7 % bound
  const r = new Pcg32(42, 54);
  const bound = 2 ** 31 + 1;
  expect(r.below(bound)).toBe(0xa15c02b7 % bound);
  // 0x7b47f409 = 2068313097 < 2^31 - 1 is rejected; 0xba1d3330 is accepted
  expect(r.below(bound)).toBe(0xba1d3330 % bound);
  expect(() => r.below(0)).toThrow(/bound 0/);
});

test.each([
  [10, 42, 0, [1, 6, 7, 8, 4, 3, 9, 5, 2, 0]],
  [10, 42, 1, [6, 9, 8, 2, 5, 7, 3, 0, 4, 1]],
  [12, 7, 3, [1, 9, 10, 4, 5, 0, 6, 3, 8, 2, 7, 11]],
])('seededPermutation(%i, seed %i, stream %i)', (n, seed, stream, want) => {
  expect(Array.from(seededPermutation(n, seed, stream))).toEqual(want);
});

test('permutations of a large range are permutations', () => {
  const p = seededPermutation(1000, 5, 2);
  expect(new Set(p).size).toBe(1000);
  expect(Math.max(...p)).toBe(999);
});
