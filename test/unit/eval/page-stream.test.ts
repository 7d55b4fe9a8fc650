// The streamed page readers against the bytes that were compressed: the incremental snappy decoder (reads,
// skips, seeks back through checkpoints, every element kind, window and corruption errors), the raw reader,
// and the lazy dictionary (entries fetched in any order).
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { LazyDictionary } from '../../../src/eval/io/lazy-dictionary';
import { openPageStream } from '../../../src/eval/io/page-stream';
import { SnappyPageStream, SnappyWindowError } from '../../../src/eval/io/snappy-stream';

// hyparquet-writer's snappy compressor (a different code base from our decoder) makes the compressed data
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { snappyCompress } = require('./helpers/esm').loadEsm('hyparquet-writer/src/snappy.js') as { snappyCompress(b: Uint8Array): Uint8Array };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pagestream-'));
const JUNK = 37; // bytes before and after the page in the file, which the stream must not touch

/** Writes `body` between junk bytes; returns the open file and the body's offset. */
async function fileWith(name: string, body: Uint8Array) {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, Buffer.concat([Buffer.alloc(JUNK, 0xee), body, Buffer.alloc(JUNK, 0xee)]));
  return fs.promises.open(file, 'r');
}

/** 3 MB with long random runs (literals), repeats at short and long distances (copies), and zero runs. */
function sampleData(): Uint8Array {
  const parts: Buffer[] = [];
  let seed = 1;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
  let total = 0;
  while (total < 3_000_000) {
    const kind = Math.floor(rnd() * 4);
    let part: Buffer;
    if (kind === 0) part = crypto.randomBytes(1 + Math.floor(rnd() * 200_000));
    else if (kind === 1) part = Buffer.alloc(1 + Math.floor(rnd() * 100_000), 0);
    else if (kind === 2) part = Buffer.from('abcdefgh'.repeat(1 + Math.floor(rnd() * 5000)));
    else {
      const prev = parts.length ? parts[Math.floor(rnd() * parts.length)] : Buffer.from('x');
      part = Buffer.from(prev.subarray(0, Math.min(prev.length, 50_000)));
    }
    parts.push(part);
    total += part.length;
  }
  return new Uint8Array(Buffer.concat(parts));
}

describe('snappy page stream', () => {
  const data = sampleData();
  const compressed = snappyCompress(data);

  test('reads everything in uneven steps, equal to the original bytes', async () => {
    const fh = await fileWith('a.snappy', compressed);
    try {
      const s = new SnappyPageStream(fh, 'a', JUNK, compressed.length, data.length, 64 * 1024);
      const got: Uint8Array[] = [];
      let step = 1;
      while (s.position < data.length) {
        const n = Math.min(step, data.length - s.position);
        got.push(await s.read(n));
        step = (step * 7 + 3) % 300_000;
      }
      expect(Buffer.compare(Buffer.concat(got), Buffer.from(data))).toBe(0);
      await expect(s.read(1)).rejects.toThrow('read past the end of the page');
    } finally {
      await fh.close();
    }
  });

  test('seeks forward and back (through checkpoints) to any offset', async () => {
    const fh = await fileWith('b.snappy', compressed);
    try {
      const s = new SnappyPageStream(fh, 'b', JUNK, compressed.length, data.length, 100 * 1000);
      const offsets = [2_900_000, 10, 1_500_000, 1_499_990, 0, 2_999_000, 700_123, 700_000, data.length - 5];
      for (const p of offsets) {
        await s.seek(p);
        expect(s.position).toBe(p);
        const n = Math.min(5000, data.length - p);
        expect(Buffer.compare(Buffer.from(await s.read(n)), Buffer.from(data.subarray(p, p + n)))).toBe(0);
      }
    } finally {
      await fh.close();
    }
  });

  /** A hand-written snappy stream: preamble, then elements. */
  const varint = (n: number) => {
    const out: number[] = [];
    do {
      out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
      n = Math.floor(n / 128);
    } while (n > 0);
    return out;
  };
  const literal = (bytes: Buffer) => {
    const n = bytes.length - 1;
    const head = n < 60 ? [n << 2] : n < 256 ? [60 << 2, n] : n < 65536 ? [61 << 2, n & 255, n >> 8] : [62 << 2, n & 255, (n >> 8) & 255, n >> 16];
    return Buffer.concat([Buffer.from(head), bytes]);
  };
  const copy4 = (len: number, offset: number) => Buffer.from([((len - 1) << 2) | 3, offset & 255, (offset >> 8) & 255, (offset >> 16) & 255, offset >>> 24]);

  test('copies with a 4-byte offset and overlapping copies', async () => {
    const body = Buffer.concat([Buffer.from(varint(12)), literal(Buffer.from('abcd')), copy4(8, 4)]);
    const fh = await fileWith('c.snappy', body);
    try {
      const s = new SnappyPageStream(fh, 'c', JUNK, body.length, 12);
      expect(Buffer.from(await s.read(12)).toString()).toBe('abcdabcdabcd');
    } finally {
      await fh.close();
    }
  });

  test('a copy reaching beyond the 64 KiB window is a SnappyWindowError; corrupt data a one-line error', async () => {
    const lit = crypto.randomBytes(1_500_000);
    const far = Buffer.concat([Buffer.from(varint(lit.length + 4)), literal(lit), copy4(4, 1_200_000)]);
    let fh = await fileWith('d.snappy', far);
    try {
      const s = new SnappyPageStream(fh, 'far', JUNK, far.length, lit.length + 4);
      await expect(s.read(lit.length + 4)).rejects.toThrow(SnappyWindowError);
    } finally {
      await fh.close();
    }
    const truncated = Buffer.from(compressed.subarray(0, 1000));
    fh = await fileWith('e.snappy', truncated);
    try {
      const s = new SnappyPageStream(fh, 'cut', JUNK, truncated.length, data.length);
      await expect(s.read(data.length)).rejects.toThrow(/^cut: snappy data ends/);
      const wrongSize = new SnappyPageStream(fh, 'size', JUNK, truncated.length, 99);
      await expect(wrongSize.read(1)).rejects.toThrow(`size: snappy data holds ${data.length} bytes, the page header says 99`);
    } finally {
      await fh.close();
    }
  });
});

test('uncompressed pages: reads, skips and seeks inside the range only', async () => {
  const body = Buffer.from('0123456789abcdef');
  const fh = await fileWith('raw.bin', body);
  try {
    const s = openPageStream(fh, 'raw', 'UNCOMPRESSED', JUNK, body.length, body.length)!;
    expect(Buffer.from(await s.read(4)).toString()).toBe('0123');
    await s.skip(6);
    expect(Buffer.from(await s.read(3)).toString()).toBe('abc');
    await s.seek(1);
    expect(Buffer.from(await s.read(2)).toString()).toBe('12');
    await expect(s.read(100)).rejects.toThrow('raw: read past the end of the page (16 bytes)');
    expect(openPageStream(fh, 'gz', 'GZIP', 0, 1, 1)).toBeUndefined();
  } finally {
    await fh.close();
  }
});

test('lazy dictionary: PLAIN byte arrays fetched in any order, out-of-range index rejected', async () => {
  const entries = Array.from({ length: 40 }, (_, k) => crypto.randomBytes(k === 7 ? 0 : 1000 + k * 3000));
  const plain = Buffer.concat(entries.flatMap((e) => [Buffer.from(new Uint32Array([e.length]).buffer), e]));
  const compressed = snappyCompress(plain);
  const fh = await fileWith('dict.snappy', compressed);
  try {
    const src = openPageStream(fh, 'dict', 'SNAPPY', JUNK, compressed.length, plain.length)!;
    const dict = new LazyDictionary(src, entries.length, 'dict', (b) => Buffer.from(b).toString('hex'));
    for (const k of [0, 1, 5, 3, 39, 7, 20, 20, 0, 38, 12, 39])
      expect(await dict.get(k)).toBe(entries[k].toString('hex'));
    await expect(dict.get(40)).rejects.toThrow('dict: dictionary index 40 out of range (40 entries)');
  } finally {
    await fh.close();
  }
});
