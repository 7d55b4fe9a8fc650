// The native Pillow-exact BICUBIC resize against Pillow 12.3 output (test/unit/fixtures/bicubic.json, made by
// fixtures/make_image_fixtures.py).
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

import { resizeBicubic } from '../../src/image/native_image';

interface Case {
  width: number; height: number; out_width: number; out_height: number; channels: number;
  input_b64: string; output_sha256: string; output_first16: number[];
}

const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures/bicubic.json'), 'utf8'));
const cases: Case[] = fixture.cases;

describe('resizeBicubic matches Pillow', () => {
  test.each(cases.map((c) => [`${c.width}x${c.height}x${c.channels} -> ${c.out_width}x${c.out_height}`, c] as [string, Case]))('%s', (_n, c) => {
    const src = new Uint8Array(Buffer.from(c.input_b64, 'base64'));
    const out = resizeBicubic(src, c.width, c.height, c.channels, c.out_width, c.out_height);
    expect(out.length).toBe(c.out_width * c.out_height * c.channels);
    expect(Array.from(out.subarray(0, 16))).toEqual(c.output_first16);
    expect(crypto.createHash('sha256').update(out).digest('hex')).toBe(c.output_sha256);
  });
});

describe('resizeBicubic hand-checked values', () => {
  test('a constant image stays constant (weights sum to one in fixed point)', () => {
    const src = new Uint8Array(5 * 4 * 3).fill(200);
    expect(Array.from(new Set(resizeBicubic(src, 5, 4, 3, 13, 9)))).toEqual([200]);
  });
  test('1-pixel-wide step upscaled 1 -> 2 per side: Keys kernel a=-0.5 at +-0.25/0.75', () => {
    // 2x1 gray [0, 255] -> 4x1. Output o has centre (o+0.5)/2 - 0.5 in input pixels; weights of taps 0 and 1:
    // o=0: x=-0.25 -> taps clamp to the edge, value 0 (only tap 0 and 1 with w(0.25), w(1.25)); computed by hand:
    // K(0.25)=0.8671875, K(1.25)=-0.0703125 -> out = 255*(-0.0703125)/(0.796875) -> negative -> 0
    // o=1: centre 0.25: K(0.25)=0.8671875 on tap 0, K(0.75)=0.2265625 on tap 1, K(1.75)=-0.0390625 (out of range)
    //      -> 255*0.2265625/1.09375 = 52.82 -> 53
    const out = resizeBicubic(new Uint8Array([0, 255]), 2, 1, 1, 4, 1);
    expect(Array.from(out)).toEqual([0, 53, 202, 255]);
  });
  test('bad arguments are errors, not crashes', () => {
    expect(() => resizeBicubic(new Uint8Array(5), 2, 2, 3, 4, 4)).toThrow(/has 5 bytes, 2x2x3 needs 12/);
    expect(() => resizeBicubic(new Uint8Array(12), 2, 2, 3, 0, 4)).toThrow(/outWidth/);
    expect(() => resizeBicubic([1, 2] as unknown as Uint8Array, 1, 1, 2, 4, 4)).toThrow(/Uint8Array/);
  });
});
