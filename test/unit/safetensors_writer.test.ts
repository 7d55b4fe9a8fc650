// The streaming writer must produce exactly what Python safetensors 0.8.0 wrote for the golden checkpoints
// (same tensors in the same order -> the same bytes), and refuse producers that write the wrong amount.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { safetensorsHeader, TensorEntry, writeSafetensorsStream, SafetensorsDType } from '../../src/model/safetensors_writer';

const GOLDEN = path.join(__dirname, '..', 'golden', 'models');

function parse(file: string): { entries: TensorEntry[]; data: Map<string, Buffer>; metadata: Record<string, string> } {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const metadata = header.__metadata__ ?? {};
  delete header.__metadata__;
  const items = Object.entries(header as Record<string, { dtype: SafetensorsDType; shape: number[]; data_offsets: [number, number] }>).sort(
    (a, b) => a[1].data_offsets[0] - b[1].data_offsets[0],
  );
  const data = new Map<string, Buffer>();
  for (const [name, t] of items) data.set(name, buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]));
  return { entries: items.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })), data, metadata };
}

describe('streaming safetensors writer', () => {
  let tmp: string;
  beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-bench-st-'))));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const files = ['tiny-flat/model.safetensors', 'tiny-nested/model-00001-of-00003.safetensors', 'tiny-nested/model-00003-of-00003.safetensors'];
  test.each(files)('rewrites the Python-written %s byte for byte', (rel) => {
    const src = path.join(GOLDEN, rel);
    const { entries, data, metadata } = parse(src);
    const out = path.join(tmp, path.basename(rel));
    // Hand the bytes over in uneven pieces, as a streaming producer would.
    const total = writeSafetensorsStream(out, entries, (t, write) => {
      const b = data.get(t.name)!;
      for (let o = 0; o < b.length; o += 1000) write(b.subarray(o, Math.min(b.length, o + 1000)));
      if (b.length === 0) write(new Uint8Array(0));
    }, metadata);
    const expected = fs.readFileSync(src);
    expect(total).toBe(expected.length);
    expect(fs.readFileSync(out).equals(expected)).toBe(true);
    expect(fs.readdirSync(path.dirname(out)).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });

  test('header is space-padded to a multiple of 8 and starts with the metadata', () => {
    const h = safetensorsHeader([{ name: 'a', dtype: 'BF16', shape: [3] }], { format: 'pt' });
    const n = Number(h.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const json = h.subarray(8).toString('utf8');
    expect(json.trimEnd()).toBe('{"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]}}');
  });

  test('a producer that writes too few or too many bytes fails and leaves no file', () => {
    const out = path.join(tmp, 'bad.safetensors');
    const t: TensorEntry[] = [{ name: 'x', dtype: 'F32', shape: [2, 2] }];
    expect(() => writeSafetensorsStream(out, t, (_e, w) => w(new Uint8Array(12)))).toThrow(/wrote 12 of the 16 bytes of "x"/);
    expect(() => writeSafetensorsStream(out, t, (_e, w) => w(new Uint8Array(20)))).toThrow(/more than the 16 bytes of "x"/);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(path.dirname(out)).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });

  test('rejects duplicate names and bad shapes', () => {
    expect(() => safetensorsHeader([{ name: 'a', dtype: 'F32', shape: [1] }, { name: 'a', dtype: 'F32', shape: [1] }])).toThrow(/duplicate/);
    expect(() => safetensorsHeader([{ name: 'a', dtype: 'F32', shape: [1.5] }])).toThrow(/bad shape/);
  });
});
