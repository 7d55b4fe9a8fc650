// The loader over the fixture data (test/fixtures/data, see its make-fixtures.mjs): record order, wrap-around,
// seeded shuffling, skip counting by reason, strict mode, packing limits, and resume = uninterrupted.
// Records (global index): ds_a 0..11, ds_b 12..15. Usable: 0, 1, 10, 11, 12, 13, 14, 15; records 2..9 are one
// bad record per skip reason, in SKIP_REASONS order.
import * as path from 'path';

import { checkBatch } from '../../../src/data/batch_check';
import { TrainDataLoader, TrainDataOptions } from '../../../src/data/loader';
import { seededPermutation } from '../../../src/data/prng';
import { formatSkipSummary } from '../../../src/data/skips';
import { loadTokenizer, Tokenizer } from '../../../src/model/tokenizer';
import { fakeImageLoader, FIXTURES, TINY_MODEL } from './helpers';

const GOOD = [0, 1, 10, 11, 12, 13, 14, 15];
let tok: Tokenizer;
beforeAll(async () => {
  tok = await loadTokenizer(TINY_MODEL);
});

const open = (o: Partial<TrainDataOptions> = {}) =>
  TrainDataLoader.open({ dataPath: path.join(FIXTURES, 'meta.json'), tokenizer: tok, stage: 1, loadImage: fakeImageLoader(3136, 50176), ...o });

async function sampleOrder(l: TrainDataLoader, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(...Array.from((await l.next()).sampleIds));
  return out;
}

test('--no-shuffle: meta order then file order, bad records skipped, wrapping around', async () => {
  const l = open({ shuffle: false });
  expect(await sampleOrder(l, 10)).toEqual([...GOOD, 0, 1]);
  expect(l.state()).toMatchObject({ epoch: 1, position: 2 });
});

test('every skip is counted by reason, with examples naming the record', async () => {
  const l = open({ shuffle: false });
  await sampleOrder(l, 8);
  const s = l.summary();
  expect(s).toMatchObject({
    read: 16,
    used: 8,
    skipped: 8,
    byReason: {
      malformed_record: 1, invalid_box: 1, box_out_of_range: 1, box_inverted: 1,
      lvr_box_mismatch: 1, image_placeholder_mismatch: 1, missing_image: 1, undecodable_image: 1,
    },
  });
  expect(s.examples.malformed_record).toEqual([`ds_a[2] (${path.join(FIXTURES, 'a.json')}): conversations has 1 turns; it must alternate human/gpt in pairs`]);
  expect(s.examples.lvr_box_mismatch![0]).toMatch(/ds_a\[6\].*8 <\|lvr\|> slots for 2 box\(es\) x 8/);
  expect(s.examples.image_placeholder_mismatch![0]).toMatch(/ds_a\[7\].*1 <image> placeholder\(s\) for 2 image\(s\)/);
  expect(s.examples.missing_image![0]).toMatch(/ds_a\[8\].*gqa\/images\/nothere\.png/);
  expect(s.examples.undecodable_image![0]).toMatch(/ds_a\[9\].*corrupt\.jpg/);
  expect(formatSkipSummary(s)).toBe(
    'data: 8 samples used, 8 skipped (malformed_record=1, invalid_box=1, box_out_of_range=1, box_inverted=1, lvr_box_mismatch=1, image_placeholder_mismatch=1, missing_image=1, undecodable_image=1)',
  );
});

test('--strict throws on the first bad record, naming it and the reason', async () => {
  const l = open({ shuffle: false, strict: true });
  await sampleOrder(l, 2);
  await expect(l.next()).rejects.toThrow(`data: ds_a[2] (${path.join(FIXTURES, 'a.json')}): malformed record (fields, types, or conversation turns): conversations has 1 turns; it must alternate human/gpt in pairs (--strict)`);
});

test('shuffling follows seededPermutation(N, seed, epoch), a new order each epoch', async () => {
  const l = open({ seed: 7 });
  const want = [...seededPermutation(16, 7, 0), ...seededPermutation(16, 7, 1)].filter((g) => GOOD.includes(g));
  expect(await sampleOrder(l, 16)).toEqual(want);
  expect(want.slice(0, 8)).not.toEqual(want.slice(8));
  expect(await sampleOrder(open({ seed: 7 }), 5)).toEqual(want.slice(0, 5));
  expect(await sampleOrder(open({ seed: 8 }), 8)).not.toEqual(want.slice(0, 8));
});

test('record contents reach the sample: multi-turn labels, two boxes, dummy boxes, path mapping', async () => {
  const l = open({ shuffle: false });
  const s = [];
  for (let i = 0; i < 8; i++) s.push(...(await l.nextSamples()));
  const [readme, twoBoxes, cub, zero, openimages, sroie, twoTurns] = s;
  // 84x56 png with [3136, 50176] px -> 84x56 (grid 1x4x6, merged 2x3); boxes [0,0,.5,.5] and [.5,.5,1,1]
  expect(twoBoxes.images[0].grid).toEqual([1, 4, 6]);
  expect(twoBoxes.boxTokens.map((b) => Array.from(b))).toEqual([[0, 1], [4, 5]]);
  expect(twoBoxes.lvrSlots.length).toBe(16);
  expect(readme.boxTokens[0].length).toBeGreaterThan(0);
  expect(cub.boxTokens.map((b) => Array.from(b))).toEqual([[0]]); // empty bboxes
  expect(zero.boxTokens.map((b) => Array.from(b))).toEqual([[0]]); // zero-area box
  expect(openimages.images[0].grid).toEqual([1, 4, 4]); // 64x48 -> 56x56
  expect(sroie.images[0].grid).toEqual([1, 4, 4]); // 48x64 -> 56x56
  // two turns: the first answer is supervised too, the second user piece is not
  const text = tok.decode(twoTurns.inputIds);
  expect(text).toContain('<|im_start|>assistant\nIt is a picture.<|im_end|>\n<|im_start|>user\nWhere exactly?<|im_end|>\n<|im_start|>assistant\n<|lvr_start|>');
  const supervised = tok.decode(twoTurns.inputIds.filter((_, i) => twoTurns.labels[i] !== -100));
  expect(supervised).toBe(`It is a picture.<|im_end|>\n<|lvr_start|>${'<|lvr|>'.repeat(8)}<|lvr_end|>\n<answer> top left </answer><|im_end|>\n`);
});

test('packing: samples over the limit are skipped as too_long; packs respect the limits', async () => {
  const packing = { maxPackedTokens: 300, longSeqThreshold: 150, maxInstancesPerPack: 3, maxBufferSize: 4 };
  const l = open({ shuffle: false, packing });
  const seen: number[] = [];
  for (let i = 0; i < 8; i++) {
    const b = await l.next();
    checkBatch(b, { imagePad: l.ids.imagePad, lvr: l.ids.lvr });
    expect(b.numSamples).toBeLessThanOrEqual(3);
    expect(b.numTokens).toBeLessThanOrEqual(300);
    if (b.numSamples > 1) for (let s = 0; s < b.numSamples; s++) expect(b.cuSeqlens[s + 1] - b.cuSeqlens[s]).toBeLessThan(150);
    seen.push(...b.sampleIds);
  }
  expect(l.summary().byReason.too_long).toBeGreaterThanOrEqual(1);
  expect(l.summary().examples.too_long![0]).toMatch(/ds_b\[3\].*tokens > 300/);
  expect(seen).not.toContain(15);
});

describe('resume continues with exactly the next batch', () => {
  const cases: Array<[string, Partial<TrainDataOptions>]> = [
    ['unpacked, batch 2, no shuffle', { shuffle: false, batchSize: 2 }],
    ['packed, shuffled', { seed: 3, packing: { maxPackedTokens: 600, longSeqThreshold: 80, maxInstancesPerPack: 3, maxBufferSize: 4 } }],
    ['packed with the released values', { seed: 11, packing: true }],
  ];
  test.each(cases)('%s', async (_name, o) => {
    const a = open(o);
    const all = [];
    for (let i = 0; i < 9; i++) all.push(await a.next());
    let withOpenBuffers = 0;
    for (const cut of [1, 3, 4, 6]) {
      const b = open(o);
      for (let i = 0; i < cut; i++) await b.next();
      const cursor = JSON.parse(JSON.stringify(b.state()));
      if (cursor.open.length) withOpenBuffers++;
      const c = open(o);
      await c.restore(cursor);
      for (let i = cut; i < 9; i++) {
        const x = await c.next();
        expect(Array.from(x.sampleIds)).toEqual(Array.from(all[i].sampleIds));
        expect(x.inputIds).toEqual(all[i].inputIds);
        expect(Buffer.from(x.pixelValues.buffer).equals(Buffer.from(all[i].pixelValues.buffer))).toBe(true);
      }
      expect(c.summary().byReason).toEqual(a.summary().byReason);
    }
    // with small packs some cuts fall while samples wait in an open buffer (with the released values and these
    // short samples every pack closes on its 4th sample, so the buffer is empty between batches)
    if (o.packing && o.packing !== true) expect(withOpenBuffers).toBeGreaterThan(0);
  });

  test('a cursor from a different setup is refused, naming the flag', async () => {
    const cursor = open({ shuffle: false }).state();
    await expect(open({ shuffle: true }).restore(cursor)).rejects.toThrow(/shuffle is false in the checkpoint but true now \(pass the same --no-shuffle/);
    await expect(open({ shuffle: false, seed: 1 }).restore(cursor)).rejects.toThrow(/seed is 42 in the checkpoint but 1 now/);
    await expect(open({ shuffle: false, packing: true }).restore(cursor)).rejects.toThrow(/--enable-data-packing/);
    await expect(open({ shuffle: false }).restore({ ...cursor, numRecords: 3 })).rejects.toThrow(/the training data changed/);
    await expect(open({ shuffle: false }).restore({ ...cursor, position: 99 })).rejects.toThrow(/position .* is outside 0..15/);
  });
});

test('data that has no usable record at all is an error, not an endless loop', async () => {
  const l = TrainDataLoader.fromDatasets(
    [{ spec: { dsName: 'x', dataPath: 'x.json', imageFolder: FIXTURES }, records: [{}, { image: 'a' }] }],
    { tokenizer: tok, stage: 1, loadImage: fakeImageLoader() },
  );
  await expect(l.next()).rejects.toThrow(/no usable sample: 2 records read in a row were all skipped \(\{"malformed_record":2\}\)/);
});
