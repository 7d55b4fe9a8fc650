// The PRNG behind `--seed` data shuffling: PCG32 (O'Neill 2014, pcg_setseq_64_xsh_rr_32, the generator of the
// reference `pcg32_random_r` / `pcg32_srandom_r` / `pcg32_boundedrand_r`), chosen because it is small, has
// published test vectors (seed 42, stream 54 -> 0xa15c02b7 0x7b47f409 ...) and independent streams, so epoch e
// of a run can use stream e of the same seed. Upstream shuffles with numpy's PCG64 (method.md §5.1); its exact
// order is not reproduced (the contract only asks for seeded, documented shuffling).
const MASK64 = (1n << 64n) - 1n;
const MULT = 6364136223846793005n;

export class Pcg32 {
  private state = 0n;
  private readonly inc: bigint;

  /** pcg32_srandom_r(initstate = seed, initseq = stream); both taken modulo 2^64. */
  constructor(seed: number | bigint, stream: number | bigint = 0) {
    const s = BigInt.asUintN(64, BigInt(seed));
    this.inc = (BigInt.asUintN(64, BigInt(stream)) << 1n | 1n) & MASK64;
    this.step();
    this.state = (this.state + s) & MASK64;
    this.step();
  }

  private step(): void {
    this.state = (this.state * MULT + this.inc) & MASK64;
  }

  /** Next uniform uint32 (XSH-RR output of the old state). */
  nextU32(): number {
    const old = this.state;
    this.step();
    const xorshifted = Number(((old >> 18n) ^ old) >> 27n & 0xffffffffn);
    const rot = Number(old >> 59n);
    return ((xorshifted >>> rot) | (xorshifted << ((32 - rot) & 31))) >>> 0;
  }

  /** Uniform integer in [0, bound) by rejection (pcg32_boundedrand_r), 1 <= bound <= 2^32. */
  below(bound: number): number {
    if (!Number.isSafeInteger(bound) || bound < 1 || bound > 2 ** 32) throw new Error(`Pcg32.below: bound ${bound} is not in [1, 2^32]`);
    const threshold = (2 ** 32 - bound) % bound; // (-bound) mod bound in uint32 arithmetic
    for (;;) {
      const r = this.nextU32();
      if (r >= threshold) return r % bound;
    }
  }
}

/**
 * A permutation of 0..n-1: Fisher-Yates from the end (for i = n-1 down to 1 swap a[i] with a[below(i + 1)]),
 * driven by Pcg32(seed, stream).
 */
export function seededPermutation(n: number, seed: number, stream: number): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  const rng = new Pcg32(seed, stream);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}
