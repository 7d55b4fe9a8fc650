// The loaders on parquet written by pyarrow the way Hugging Face publishes BLINK and HR-Bench (snappy, data
// page v1, dictionary encoding, datasets' 100-row row groups, Image structs with nulls, one big row group,
// dictionary overflow into PLAIN pages). test/fixtures/eval/make_hf_parquet.py wrote the files and, in
// expected.json, the prompts built by a Python transcription of upstream's evaluation.py and each image's
// sha256 and colour. Every read mode must agree with it: row groups read whole, page streaming, and page
// streaming with the dictionary read lazily (what a 2.8 GB file takes).
import './helpers/mock-hyparquet';

import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';

import { openBenchmark } from '../../../src/eval/benchmarks';
import type { OpenBenchmark } from '../../../src/eval/benchmarks/common';
import { ParquetFile, parquetSettings } from '../../../src/eval/io/parquet';
import type { EvalItem, ItemImages } from '../../../src/eval/types';

const HF = path.join(__dirname, '..', '..', 'fixtures', 'eval', 'hf');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { parquetHeader } = require('./helpers/esm').loadEsm('hyparquet/src/column.js') as { parquetHeader(r: object): { type: string } };

interface ImageRef {
  sha256: string;
  size: number;
  rgb: [number, number, number];
}
interface ExpectedItem {
  id: string | number;
  category: string;
  label: string;
  prompt: string;
  cycle_category?: string;
  images: ImageRef[];
}
interface ExpectedFile {
  file: string;
  row_groups: number;
  items: ExpectedItem[];
}
const EXPECTED = JSON.parse(fs.readFileSync(path.join(HF, 'expected.json'), 'utf8')) as {
  BLINK: Record<string, ExpectedFile>;
  HRBench4K: ExpectedFile;
  HRBench8K: ExpectedFile;
};
const BLINK_ITEMS = ['Counting', 'IQ_Test', 'Jigsaw', 'Relative_Reflectance', 'Spatial_Relation'].flatMap((c) => EXPECTED.BLINK[c].items);

async function collect(b: OpenBenchmark, wanted: EvalItem[]): Promise<ItemImages[]> {
  const out: ItemImages[] = [];
  for await (const x of b.images(wanted)) out.push(x);
  return out;
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** The images of `got` against the reference: exact bytes, and the pixel colour they decode to. */
async function expectImages(got: ItemImages, want: ImageRef[], tolerance: number) {
  if ('error' in got) throw new Error(`item ${got.item.id}: unexpected image error: ${got.error}`);
  expect(got.images).toHaveLength(want.length);
  for (let k = 0; k < want.length; k++) {
    const img = got.images[k] as Buffer;
    expect(Buffer.isBuffer(img)).toBe(true);
    expect(img.length).toBe(want[k].size);
    expect(sha256(img)).toBe(want[k].sha256);
    const { data } = await sharp(img).raw().toBuffer({ resolveWithObject: true });
    for (let c = 0; c < 3; c++) expect(Math.abs(data[c] - want[k].rgb[c])).toBeLessThanOrEqual(tolerance);
  }
}

const MODES: [string, number, number][] = [
  // [name, streamAbove, lazyDictionaryAbove]
  ['row groups read whole', 1 << 30, 1 << 30],
  ['page streaming', 0, 1 << 30],
  ['page streaming, lazy dictionary', 0, 0],
];

describe.each(MODES)('pyarrow-written files, %s', (_name, streamAbove, lazyAbove) => {
  const saved = { ...parquetSettings };
  beforeAll(() => Object.assign(parquetSettings, { streamAbove, lazyPageAbove: lazyAbove }));
  afterAll(() => Object.assign(parquetSettings, saved));

  test('BLINK: 5 upstream configs, datasets row groups, exact prompts and labels', async () => {
    const b = await openBenchmark('BLINK', HF);
    try {
      expect(b.items).toHaveLength(140);
      expect(b.items.map((i) => i.id)).toEqual(BLINK_ITEMS.map((i) => i.id));
      expect(b.items.map((i) => i.prompt)).toEqual(BLINK_ITEMS.map((i) => i.prompt));
      expect(b.items.map((i) => i.label)).toEqual(BLINK_ITEMS.map((i) => i.label));
      expect(b.items.map((i) => i.category)).toEqual(BLINK_ITEMS.map((i) => i.category));
      expect(b.items.filter((i) => i.error)).toEqual([]);
    } finally {
      await b.close();
    }
  });

  test('BLINK: Image structs decode to the written bytes; null image_k are left out in order', async () => {
    const b = await openBenchmark('BLINK', HF);
    try {
      // every row of the small configs, and rows on both sides of Counting's row-group boundary
      const pick = b.items.filter((i) => i.category !== 'Counting' || [0, 1, 98, 99, 100, 119].includes(i.order));
      const got = await collect(b, pick);
      expect(got.map((g) => g.item.id)).toEqual(pick.map((i) => i.id));
      for (const g of got) await expectImages(g, BLINK_ITEMS[g.item.order].images, 0);
      const jigsaw3 = got.find((g) => g.item.id === 'val_Jigsaw_3')!;
      expect('images' in jigsaw3 && jigsaw3.images).toHaveLength(2); // image_2 is null
    } finally {
      await b.close();
    }
  });

  test.each([
    ['HRBench4K', 'one row group, images repeated through the dictionary'],
    ['HRBench8K', 'three row groups, dictionary overflowing into PLAIN pages'],
  ] as const)('%s (%s): items, prompts, cycle_category, images', async (key, _layout) => {
    const want = EXPECTED[key].items;
    const b = await openBenchmark(key, HF);
    try {
      expect(b.items.map((i) => i.id)).toEqual(want.map((i) => i.id));
      expect(b.items.map((i) => i.prompt)).toEqual(want.map((i) => i.prompt));
      expect(b.items.map((i) => i.label)).toEqual(want.map((i) => i.label));
      expect(b.items.map((i) => i.category)).toEqual(want.map((i) => i.category));
      expect(b.items.map((i) => i.extra?.cycle_category)).toEqual(want.map((i) => i.cycle_category));
      // all rows, then a sparse subset (skipped pages, backward dictionary references)
      for (const pick of [b.items, b.items.filter((i) => i.order % 4 === 1 || i.order === want.length - 1)]) {
        const got = await collect(b, pick);
        expect(got.map((g) => g.item.id)).toEqual(pick.map((i) => i.id));
        for (const g of got) await expectImages(g, want[g.item.order].images, 8); // JPEG: colour within 8 levels
      }
    } finally {
      await b.close();
    }
  });
});

test('the fixtures have the layouts they claim (row groups, v1 pages, snappy, dictionary)', async () => {
  for (const f of [EXPECTED.BLINK.Counting, EXPECTED.HRBench4K, EXPECTED.HRBench8K]) {
    const pq = await ParquetFile.open(path.join(HF, f.file));
    try {
      expect(pq.metadata.row_groups).toHaveLength(f.row_groups);
      expect(pq.metadata.created_by).toMatch(/^parquet-cpp-arrow/);
      for (const g of pq.metadata.row_groups)
        for (const c of g.columns) {
          expect(c.meta_data!.codec).toBe('SNAPPY');
          expect(c.meta_data!.encodings).toContain('RLE_DICTIONARY');
          const at = Number(c.meta_data!.data_page_offset);
          const head = await pq.buffer.slice(at, Math.min(pq.buffer.byteLength, at + 65536)); // headers hold statistics
          expect(parquetHeader({ view: new DataView(head), offset: 0 }).type).toBe('DATA_PAGE'); // v1, not DATA_PAGE_V2
        }
    } finally {
      await pq.close();
    }
  }
});
