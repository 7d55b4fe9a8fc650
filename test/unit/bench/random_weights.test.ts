// Random bf16 weights: correct rounding to bf16, the requested scale, zeroed rows, and determinism.
import { Bf16RandomSource, BF16_ONE, produceBf16, toBf16Bits } from '../../../src/bench/random_weights';

const fromBits = (h: number) => new Float32Array(new Uint32Array([h << 16]).buffer)[0];

describe('random bf16 weights', () => {
  test('toBf16Bits rounds to nearest even like torch', () => {
    expect(toBf16Bits(1)).toBe(0x3f80);
    expect(toBf16Bits(-2)).toBe(0xc000);
    expect(toBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(toBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie -> even (up)
    expect(toBf16Bits(1 + 2 ** -8 + 2 ** -12)).toBe(0x3f81); // above the tie
    expect(toBf16Bits(Infinity)).toBe(0x7f80);
    expect(toBf16Bits(NaN) & 0x7f80).toBe(0x7f80);
    expect(fromBits(toBf16Bits(0.02))).toBeCloseTo(0.02, 3);
  });

  test('normal weights have the requested std and mean ~0; ones are exactly 1', () => {
    const src = new Bf16RandomSource(7, 1 << 16);
    const out = new Uint16Array(200_000);
    src.fill(out, { kind: 'normal', std: 0.02 });
    let s = 0, s2 = 0;
    for (const h of out) {
      const v = fromBits(h);
      s += v;
      s2 += v * v;
    }
    const mean = s / out.length;
    expect(Math.abs(mean)).toBeLessThan(0.001);
    expect(Math.sqrt(s2 / out.length - mean * mean)).toBeCloseTo(0.02, 3);
    src.fill(out, { kind: 'ones' });
    expect(out.every((h) => h === BF16_ONE)).toBe(true);
  });

  test('zeroRows are zero across chunk borders, other rows are not', () => {
    const chunks: Uint8Array[] = [];
    const spec = { name: 'w', shape: [10, 7], init: { kind: 'normal' as const, std: 0.02 }, zeroRows: [0, 4, 9] };
    produceBf16(spec, new Bf16RandomSource(1, 1 << 14), (b) => chunks.push(Uint8Array.from(b)), 16);
    const bytes = Buffer.concat(chunks);
    const all = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    expect(all.length).toBe(70);
    for (let r = 0; r < 10; r++) {
      const row = all.subarray(r * 7, r * 7 + 7);
      if ([0, 4, 9].includes(r)) expect(row.every((h) => h === 0)).toBe(true);
      else expect(row.some((h) => h !== 0)).toBe(true);
    }
  });

  test('same seed, same bytes', () => {
    const a = new Uint16Array(10_000);
    const b = new Uint16Array(10_000);
    new Bf16RandomSource(3, 1 << 14).fill(a, { kind: 'normal', std: 1 });
    new Bf16RandomSource(3, 1 << 14).fill(b, { kind: 'normal', std: 1 });
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });
});
