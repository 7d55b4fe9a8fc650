// The row streamer against the values written: whole row groups, page-by-page streaming and streaming with
// values read lazily out of big pages must give the same rows, for nulls, dictionary pages, several row
// groups, skipped rows, gzip / snappy / uncompressed, and flat columns vs HF Image structs.
import './helpers/mock-hyparquet';

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';

import { ParquetFile, parquetSettings } from '../../../src/eval/io/parquet';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const writer = require('./helpers/esm').loadEsm('hyparquet-writer') as { parquetWriteBuffer(o: object): ArrayBuffer };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pq-'));
const N = 23;
const ids = Array.from({ length: N }, (_, i) => BigInt(i * 10));
const names = Array.from({ length: N }, (_, i) => (i % 5 === 3 ? null : `name-${i % 4}`)); // repeats: dictionary; some nulls
const blobs = Array.from({ length: N }, (_, i) => 'x'.repeat(100 + i) + String(i)); // one distinct long string per row

function write(file: string, opts: object): string {
  const buf = writer.parquetWriteBuffer({
    columnData: [
      { name: 'id', data: ids, type: 'INT64', offsetIndex: false },
      { name: 'name', data: names, type: 'STRING', offsetIndex: false },
      { name: 'blob', data: blobs, type: 'STRING', offsetIndex: false },
    ],
    ...opts,
  });
  const p = path.join(tmp, file);
  fs.writeFileSync(p, Buffer.from(buf));
  return p;
}

const plain = write('plain.parquet', { rowGroupSize: 10, pageSize: 64 });
const gzip = write('gzip.parquet', { rowGroupSize: 1000, pageSize: 300, codec: 'GZIP', compressors: { GZIP: (b: Uint8Array) => new Uint8Array(zlib.gzipSync(b)) } });
const raw = write('raw.parquet', { rowGroupSize: 1000, pageSize: 2000, codec: 'UNCOMPRESSED' });

async function read(file: string, columns: string[], want?: (r: number) => boolean) {
  const pq = await ParquetFile.open(file);
  const out: (Record<string, unknown> | null)[] = [];
  try {
    for await (const { index, row } of pq.rows(columns, { want })) {
      expect(index).toBe(out.length);
      out.push(row);
    }
  } finally {
    await pq.close();
  }
  return out;
}

const expected = (r: number) => ({ id: ids[r], name: names[r] ?? undefined, blob: blobs[r] });

describe.each([
  ['whole row groups', 1 << 30, 1 << 30],
  ['page streaming', 0, 1 << 30],
  ['page streaming, values streamed out of every page', 0, 0],
])('%s', (_mode, streamAbove, lazyPageAbove) => {
  const saved = { ...parquetSettings };
  beforeAll(() => Object.assign(parquetSettings, { streamAbove, lazyPageAbove }));
  afterAll(() => Object.assign(parquetSettings, saved));

  test.each([
    ['snappy, 3 row groups, many pages', plain],
    ['gzip, one row group', gzip],
    ['uncompressed, one row group', raw],
  ])('%s: every row equals what was written', async (_n, file) => {
    const rows = await read(file, ['id', 'name', 'blob']);
    expect(rows).toHaveLength(N);
    rows.forEach((row, r) => expect({ ...row, name: row!.name ?? undefined }).toEqual(expected(r)));
  });

  test('unwanted rows come back null; wanted ones intact; column subsets', async () => {
    const want = (r: number) => r === 2 || r === 11 || r === 22;
    const rows = await read(plain, ['blob', 'id'], want);
    rows.forEach((row, r) => {
      if (want(r)) expect(row).toEqual({ blob: blobs[r], id: ids[r] });
      else expect(row).toBeNull();
    });
  });
});

/** Every parquet file under a fixture folder. */
function parquetFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? parquetFiles(p) : e.name.endsWith('.parquet') ? [p] : [];
  });
}

test('HF Image structs and flat columns of every fixture file: streamed rows equal hyparquet reading whole', async () => {
  const saved = { ...parquetSettings };
  const FIX = path.join(__dirname, '..', '..', 'fixtures', 'eval');
  const files = [...parquetFiles(path.join(FIX, 'data')), ...parquetFiles(path.join(FIX, 'hf'))];
  expect(files.length).toBeGreaterThan(10);
  let structs = 0;
  try {
    for (const file of files) {
      const pq = await ParquetFile.open(file);
      const columns = pq.schema.children.filter((c) => c.element.converted_type !== 'LIST').map((c) => c.element.name);
      structs += pq.schema.children.filter((c) => c.children.length && c.element.converted_type !== 'LIST').length;
      await pq.close();
      const want = (r: number) => r % 3 !== 1;
      Object.assign(parquetSettings, { streamAbove: 1 << 30, lazyPageAbove: 1 << 30 });
      const whole = await read(file, columns, want);
      Object.assign(parquetSettings, { streamAbove: 0, lazyPageAbove: 0 });
      const streamed = await read(file, columns, want);
      expect({ file, rows: streamed }).toEqual({ file, rows: whole });
    }
  } finally {
    Object.assign(parquetSettings, saved);
  }
  expect(structs).toBeGreaterThan(20);
});

test('a large row group with a list column is read whole and reported', async () => {
  const saved = { ...parquetSettings };
  parquetSettings.streamAbove = 0;
  const file = path.join(__dirname, '..', '..', 'fixtures', 'eval', 'hf', 'BLINK', 'Jigsaw', 'val-00000-of-00001.parquet');
  const pq = await ParquetFile.open(file);
  const reported: { rowGroup: number; bytes: number }[] = [];
  try {
    let n = 0;
    for await (const { row } of pq.rows(['idx', 'choices'], { onLargeNestedGroup: (x) => reported.push(x) })) {
      expect(row!.choices).toEqual(['the first image', 'the second image']);
      n++;
    }
    expect(n).toBe(5);
    expect(reported).toEqual([{ rowGroup: 0, bytes: expect.any(Number) }]);
  } finally {
    await pq.close();
    Object.assign(parquetSettings, saved);
  }
});

test('page streaming with a skip pattern reads identical values to hyparquet reading whole', async () => {
  parquetSettings.streamAbove = 0;
  try {
    const want = (r: number) => r % 3 === 1;
    const streamed = await read(gzip, ['name', 'blob'], want);
    parquetSettings.streamAbove = 1 << 30;
    const whole = await read(gzip, ['name', 'blob'], want);
    expect(streamed).toEqual(whole);
  } finally {
    parquetSettings.streamAbove = 64 * 1024 * 1024;
  }
});

test('errors name the file and the column', async () => {
  const bad = path.join(tmp, 'bad.parquet');
  fs.writeFileSync(bad, 'PAR1 this is not parquet PAR1');
  await expect(ParquetFile.open(bad)).rejects.toThrow(`${bad} is not a readable parquet file`);
  await expect(read(plain, ['nope'])).rejects.toThrow(`${plain} has no column "nope"`);
});
