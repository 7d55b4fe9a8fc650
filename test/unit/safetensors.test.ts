// safetensors reader/writer: round trip, a file written by Python safetensors 0.8.0 (golden tiny model), and
// every corruption the reader must refuse with a one-line error.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { MAX_HEADER_BYTES, readSafetensorsHeader } from '../../src/model/safetensors';
import { writeSafetensors } from '../../src/model/safetensors_writer';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-st-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A file from a raw header object (or string) and data bytes, for corruption cases. */
function rawFile(name: string, header: unknown, data: Buffer | number = 0, lengthOverride?: bigint): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  const file = path.join(tmp, name);
  fs.writeFileSync(file, Buffer.concat([len, json, typeof data === 'number' ? Buffer.alloc(data) : data]));
  return file;
}

describe('round trip', () => {
  test('values, dtypes, shapes, metadata and alignment survive', () => {
    const file = path.join(tmp, 'rt.safetensors');
    const f32 = Float32Array.from([0.25, -1.5, 3, 1e-30, 7, 8]);
    const bf16 = Uint16Array.from([0x3f80, 0xc000, 0x7f80]);
    const i64 = BigInt64Array.from([1n, -2n, 3n]);
    const u8 = Uint8Array.from([1, 2, 3]);
    writeSafetensors(file, new Map([
      ['b.u8', { dtype: 'U8', shape: [3], data: u8 }],
      ['a.f32', { dtype: 'F32', shape: [2, 3], data: f32 }],
      ['c.bf16', { dtype: 'BF16', shape: [3, 1], data: bf16 }],
      ['d.i64', { dtype: 'I64', shape: [3], data: i64 }],
      ['e.empty', { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) }],
    ]), { format: 'pt' });
    const h = readSafetensorsHeader(file);
    expect(h.metadata).toEqual({ format: 'pt' });
    expect((h.dataStart - 8) % 8).toBe(0); // header padded to 8 bytes
    const buf = fs.readFileSync(file);
    expect(h.fileSize).toBe(buf.length);
    const get = (n: string) => {
      const t = h.tensors.get(n)!;
      expect((h.dataStart + t.begin) % 8 === 0 || t.dtype !== 'I64').toBe(true);
      return buf.subarray(h.dataStart + t.begin, h.dataStart + t.end);
    };
    expect(h.tensors.get('a.f32')).toMatchObject({ dtype: 'F32', shape: [2, 3] });
    expect(Buffer.compare(get('a.f32'), Buffer.from(f32.buffer))).toBe(0);
    expect(Buffer.compare(get('c.bf16'), Buffer.from(bf16.buffer))).toBe(0);
    expect(Buffer.compare(get('d.i64'), Buffer.from(i64.buffer))).toBe(0);
    expect(Buffer.compare(get('b.u8'), Buffer.from(u8))).toBe(0);
    expect(h.tensors.get('e.empty')).toMatchObject({ shape: [0, 4] });
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp') || f.endsWith('.partial'))).toEqual([]); // no temp file left behind
  });

  test('the writer refuses data that does not match the shape', () => {
    expect(() => writeSafetensors(path.join(tmp, 'bad.safetensors'), { x: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }))
      .toThrow(/tensor x: 8 bytes, F32 \[3\] needs 12/);
    expect(fs.existsSync(path.join(tmp, 'bad.safetensors'))).toBe(false);
  });

  test('reads a file written by Python safetensors (golden tiny-flat checkpoint)', () => {
    const h = readSafetensorsHeader(path.join(__dirname, '../golden/models/tiny-flat/model.safetensors'));
    expect(h.metadata).toEqual({ format: 'pt' });
    expect(h.tensors.get('visual.patch_embed.proj.weight')).toMatchObject({ dtype: 'F32', shape: [32, 3, 2, 14, 14] });
    expect(h.tensors.get('model.embed_tokens.weight')).toMatchObject({ dtype: 'F32', shape: [416, 64] });
  });
});

describe('corrupt files are refused with one line naming the cause', () => {
  const T = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const cases: Array<[string, () => string, RegExp]> = [
    ['shorter than 8 bytes', () => { const f = path.join(tmp, 'tiny'); fs.writeFileSync(f, Buffer.alloc(5)); return f; }, /truncated: 5 bytes, shorter than the 8-byte header length/],
    ['truncated header', () => rawFile('th', { x: T }, 8, 10_000n), /truncated: header claims 10000 bytes/],
    ['truncated data', () => rawFile('td', { x: T }, 6), /tensor x: data_offsets \[0, 8\] lie beyond the 6-byte data section \(truncated file\?\)/],
    ['oversized header length', () => rawFile('big', { x: T }, 8, BigInt(MAX_HEADER_BYTES) + 1n), /header length 100000001 exceeds the 100000000-byte limit/],
    ['header length near 2^64', () => rawFile('huge', { x: T }, 8, 0xffffffffffffff00n), /exceeds the 100000000-byte limit/],
    ['bad JSON', () => rawFile('json', '{"x": {"dtype": "F32",', 8), /header is not valid UTF-8 JSON/],
    ['invalid UTF-8', () => rawFile('utf', Buffer.from([0x7b, 0xff, 0x7d]).toString('latin1'), 0), /header is not valid UTF-8 JSON/],
    ['JSON that is not an object', () => rawFile('arr', '[1, 2]', 0), /header is not a JSON object/],
    ['unknown dtype', () => rawFile('dt', { x: { ...T, dtype: 'F33' } }, 8), /tensor x: unknown dtype "F33"/],
    ['bad shape', () => rawFile('sh', { x: { ...T, shape: [2, -1] } }, 8), /tensor x: shape \[2,-1\] is not a list of non-negative integers/],
    ['size mismatch', () => rawFile('sz', { x: { ...T, shape: [3] } }, 12), /tensor x: data_offsets \[0, 8\] hold 8 bytes, F32 \[3\] needs 12/],
    ['offsets reversed', () => rawFile('rev', { x: { ...T, data_offsets: [8, 0] } }, 8), /end before they begin/],
    ['out-of-range offset', () => rawFile('oor', { x: { ...T, data_offsets: [4, 12] } }, 8), /tensor x: data_offsets \[4, 12\] lie beyond the 8-byte data section/],
    ['overlapping tensors', () => rawFile('ov', { a: T, b: { ...T, data_offsets: [4, 12] } }, 12), /tensors a \[0, 8\) and b \[4, 12\) overlap/],
    ['offsets missing', () => rawFile('nooff', { x: { dtype: 'F32', shape: [2] } }, 8), /tensor x: data_offsets undefined is not \[begin, end\]/],
    ['non-string metadata', () => rawFile('meta', { __metadata__: { format: 1 }, x: T }, 8), /__metadata__\.format is not a string/],
    ['missing file', () => path.join(tmp, 'absent.safetensors'), /cannot open \(ENOENT\)/],
  ];
  test.each(cases)('%s', (_n, make, msg) => {
    const file = make();
    let err: Error | undefined;
    try {
      readSafetensorsHeader(file);
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeDefined();
    expect(err!.message).toMatch(msg);
    expect(err!.message).toContain(file);
    expect(err!.message).not.toContain('\n');
  });

  test('gaps between tensors and a zero-size tensor are accepted', () => {
    const f = rawFile('gap', { a: T, z: { dtype: 'F32', shape: [0], data_offsets: [8, 8] }, b: { ...T, data_offsets: [16, 24] } }, 24);
    expect([...readSafetensorsHeader(f).tensors.keys()].sort()).toEqual(['a', 'b', 'z']);
  });
});
