// Random bf16 weights for the benchmark checkpoint, fast enough for ~2e9 values: a seeded pool of normal
// samples (rounded to bf16 once per std), copied into each tensor in short slices at random offsets.
// Values only need the right scale (speed does not depend on them), but they must stay finite through the
// forward pass and must not repeat in a way that makes rows identical, hence random offsets per slice.
import type { Init, TensorSpec } from './model_shape';

/** Deterministic 32-bit PRNG (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float -> bf16 bits, round to nearest even (as torch's .to(torch.bfloat16)); NaN stays NaN. */
export function toBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export const BF16_ONE = 0x3f80;

const SLICE = 4096; // values copied per random offset

export class Bf16RandomSource {
  private readonly normals: Float32Array;
  private readonly scaled = new Map<number, Uint16Array>();
  private readonly rand: () => number;

  constructor(seed: number, poolSize = 1 << 21) {
    this.rand = mulberry32(seed);
    this.normals = new Float32Array(poolSize);
    for (let i = 0; i < poolSize; i += 2) {
      // Box-Muller: two independent N(0,1) values per pair of uniforms.
      const u1 = Math.max(this.rand(), 1e-12);
      const u2 = this.rand();
      const r = Math.sqrt(-2 * Math.log(u1));
      this.normals[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < poolSize) this.normals[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
  }

  private pool(std: number): Uint16Array {
    let p = this.scaled.get(std);
    if (!p) {
      p = new Uint16Array(this.normals.length);
      for (let i = 0; i < p.length; i++) p[i] = toBf16Bits(this.normals[i] * std);
      this.scaled.set(std, p);
    }
    return p;
  }

  /** Fills `out` with bf16 bits drawn from `init`. */
  fill(out: Uint16Array, init: Init): void {
    if (init.kind === 'ones') {
      out.fill(BF16_ONE);
      return;
    }
    const p = this.pool(init.std);
    const span = p.length - SLICE;
    for (let o = 0; o < out.length; o += SLICE) {
      const n = Math.min(SLICE, out.length - o);
      const src = Math.floor(this.rand() * span);
      out.set(p.subarray(src, src + n), o);
    }
  }
}

/**
 * Streams one tensor's bf16 bytes in chunks of at most `chunkValues` values, zeroing the rows in
 * `spec.zeroRows` (rows of the tensor's first dimension).
 */
export function produceBf16(spec: TensorSpec, source: Bf16RandomSource, write: (bytes: Uint8Array) => void, chunkValues = 1 << 22): void {
  const total = spec.shape.reduce((a, b) => a * b, 1);
  const rowLen = spec.shape.length > 1 ? total / spec.shape[0] : 1;
  const buf = new Uint16Array(Math.min(chunkValues, Math.max(total, 1)));
  for (let start = 0; start < total; start += buf.length) {
    const n = Math.min(buf.length, total - start);
    const view = buf.subarray(0, n);
    source.fill(view, spec.init);
    for (const r of spec.zeroRows ?? []) {
      const a = Math.max(r * rowLen, start);
      const b = Math.min((r + 1) * rowLen, start + n);
      if (a < b) view.fill(0, a - start, b - start);
    }
    write(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  }
}
