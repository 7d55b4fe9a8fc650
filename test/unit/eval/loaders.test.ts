// Loaders on the fixture files (test/fixtures/eval, made by make-fixtures.mjs) in every published format:
// parquet with HF Image structs and with base64 strings, csv, jsonl, json, zip; plus the alternative layouts
// (HR-Bench .tsv, MME-RealWorld-Lite extracted) and the errors a wrong layout gives.
import './helpers/mock-hyparquet';

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { openBenchmark, parseBenchmarkList } from '../../../src/eval/benchmarks';
import type { OpenBenchmark } from '../../../src/eval/benchmarks/common';
import { parquetSettings } from '../../../src/eval/io/parquet';
import type { EvalItem, ImageInput, ItemImages } from '../../../src/eval/types';

const FIX = path.join(__dirname, '..', '..', 'fixtures', 'eval');
const DATA = path.join(FIX, 'data');
const ALT = path.join(FIX, 'data-alt');
const I = "\nAnswer with the option's letter from the given choices directly.";
// the fixture script writes the same 8x8 JPEG and PNG everywhere; MMVP's 1.jpg is that JPEG
const JPG = fs.readFileSync(path.join(DATA, 'MMVP', 'MMVP Images', '1.jpg'));
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47]);

async function collect(b: OpenBenchmark, wanted: EvalItem[] = b.items): Promise<ItemImages[]> {
  const out: ItemImages[] = [];
  for await (const x of b.images(wanted)) out.push(x);
  return out;
}

function bytesOf(img: ImageInput): Buffer {
  return Buffer.isBuffer(img) ? img : fs.readFileSync(img);
}

function imagesOf(x: ItemImages): ImageInput[] {
  if ('error' in x) throw new Error(`unexpected image error: ${x.error}`);
  return x.images;
}

describe('BLINK (parquet, HF Image structs)', () => {
  test('upstream subset: 5 configs of val in order, labels, categories, prompts', async () => {
    const b = await openBenchmark('BLINK', DATA);
    expect(b.items.map((i) => i.id)).toEqual([
      'val_Counting_1', 'val_Counting_2', 'val_Counting_3', 'val_IQ_Test_1', 'val_IQ_Test_2', 'val_Jigsaw_1',
      'val_Relative_Reflectance_1', 'val_Spatial_Relation_1',
    ]);
    expect(b.items.map((i) => i.label).join('')).toBe('BDACABCA');
    expect(b.items[0].category).toBe('Counting');
    expect(b.items[6].category).toBe('Relative_Reflectance');
    expect(b.items[0].prompt).toBe(`How many blue floats are there?\nOptions:\nA. 0\nB. 3\nC. 2\nD. 1\n${I}`);
    expect(b.items[6].prompt).toBe(`Which point has darker surface color?\nOptions:\nA. A is darker\nB. B is darker\nC. About the same\n${I}`);
    await b.close();
  });

  test('images: non-null image_1..4 in order, bytes as stored', async () => {
    const b = await openBenchmark('BLINK', DATA);
    const imgs = await collect(b);
    expect(imgs.map((x) => imagesOf(x).length)).toEqual([1, 1, 1, 2, 2, 3, 1, 1]);
    expect(bytesOf(imagesOf(imgs[1])[0]).equals(JPG)).toBe(true); // val_Counting_2 is the JPEG
    expect(bytesOf(imagesOf(imgs[0])[0]).subarray(0, 4).equals(PNG_MAGIC)).toBe(true);
    expect(bytesOf(imagesOf(imgs[3])[1]).equals(JPG)).toBe(true); // IQ_Test_1: [png, jpg]
  });

  test('a subset of wanted rows across row groups', async () => {
    const b = await openBenchmark('BLINK', DATA);
    const imgs = await collect(b, [b.items[2], b.items[5]]);
    expect(imgs.map((x) => x.item.id)).toEqual(['val_Counting_3', 'val_Jigsaw_1']);
  });

  test('--blink-subtasks all reads 14 configs; a missing config names the expected file', async () => {
    const all = await openBenchmark('BLINK', DATA, { blinkSubtasks: 'all' });
    expect(new Set(all.items.map((i) => i.category)).size).toBe(14);
    expect(all.items).toHaveLength(17);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'blink-'));
    fs.mkdirSync(path.join(tmp, 'BLINK', 'Counting'), { recursive: true });
    await expect(openBenchmark('BLINK', tmp)).rejects.toThrow(`expected file ${path.join(tmp, 'BLINK', 'Counting', 'val-*.parquet')}`);
    await expect(openBenchmark('BLINK', DATA, { blinkSubtasks: ['Nope'] })).rejects.toThrow('unknown subtask Nope');
  });

  test("--blink-prompt official: the row's own prompt, after BLINK's disclaimer for Art_Style / Forensic_Detection / Jigsaw", async () => {
    const up = await openBenchmark('BLINK', DATA, { blinkSubtasks: 'all' });
    const off = await openBenchmark('BLINK', DATA, { blinkSubtasks: 'all', blinkPrompt: 'official' });
    expect(off.items.map((i) => i.id)).toEqual(up.items.map((i) => i.id));
    const counting = off.items.find((i) => i.id === 'val_Counting_1')!;
    const upCounting = up.items.find((i) => i.id === 'val_Counting_1')!;
    // make-fixtures.mjs writes prompt = question + "\n(A) c1\n(B) c2..." (the upstream prompt starts with the question too)
    const question = upCounting.prompt.split('\nOptions:\n')[0];
    expect(counting.prompt.startsWith(`${question}\n(A) `)).toBe(true);
    expect(counting.prompt).not.toContain('Answer with the option');
    const jigsaw = off.items.find((i) => i.category === 'Jigsaw')!;
    expect(jigsaw.prompt.startsWith("Disclaimer: This is not to make unfair assumptions about the people in the image and you just need to give your assessment on this question. You don't need to identify the real people. You just need to analyze based on the information I gave you.\n\n")).toBe(true);
    expect(off.items.filter((i) => i.prompt.startsWith('Disclaimer:')).map((i) => i.category).sort()).toEqual(
      off.items.filter((i) => ['Art_Style', 'Forensic_Detection', 'Jigsaw'].includes(i.category)).map((i) => i.category).sort(),
    );
    expect(off.items.every((i) => i.extra?.options === up.items.find((u) => u.id === i.id)!.extra?.options)).toBe(true);
  });
});

describe('MMVP (csv + jpg folder)', () => {
  test('ids, labels, exact prompt with (a)/(b) replaced everywhere', async () => {
    const b = await openBenchmark('MMVP', DATA);
    expect(b.items.map((i) => i.id)).toEqual([1, 2, 3, 4, 99, 100]);
    expect(b.items.map((i) => i.label).join('')).toBe('ABABAB');
    expect(b.items[0].prompt).toBe(`Are the butterfly's wings closer to being open or closed?\nOptions:\nA. Open B. Closed${I}`);
    expect(b.items[2].prompt).toBe(`Is the dog facing left or right, from the camera's "point of view"?\nOptions:\nA. Left B. Right${I}`);
    const imgs = await collect(b);
    expect(imagesOf(imgs[0])[0]).toBe(path.join(DATA, 'MMVP', 'MMVP Images', '1.jpg'));
  });

  test('--mmvp-fix-pairs swaps 99/100 (and would swap 279/280)', async () => {
    const b = await openBenchmark('MMVP', DATA, { mmvpFixPairs: true });
    expect(b.items.map((i) => i.label).join('')).toBe('ABABBA');
  });

  test('missing CSV names the file', async () => {
    await expect(openBenchmark('MMVP', ALT)).rejects.toThrow(`MMVP: expected file ${path.join(ALT, 'MMVP', 'Questions.csv')} was not found`);
  });
});

describe('V* (jsonl + folders)', () => {
  test('prompt = text + instruction (duplicated, as upstream), labels, categories, image paths', async () => {
    const b = await openBenchmark('VSTAR', DATA);
    expect(b.items.map((i) => i.id)).toEqual([0, 1, 115]);
    expect(b.items.map((i) => `${i.label}:${i.category}`)).toEqual(['A:direct_attributes', 'C:direct_attributes', 'B:relative_position']);
    expect(b.items[2].prompt).toBe(
      `Is the flag on the left or right side of the car?\n(A) left\n(B) right\nAnswer with the option's letter from the given choices directly.${I}`,
    );
    const imgs = await collect(b);
    expect(imagesOf(imgs[2])[0]).toBe(path.join(DATA, 'vstar_bench', 'relative_position', 'sa_1205.jpg'));
  });

  test('a malformed line becomes an error item, the rest load', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vstar-'));
    fs.mkdirSync(path.join(tmp, 'vstar_bench'));
    const good = fs.readFileSync(path.join(DATA, 'vstar_bench', 'test_questions.jsonl'), 'utf8').split('\n')[0];
    fs.writeFileSync(path.join(tmp, 'vstar_bench', 'test_questions.jsonl'), `${good}\n{not json\n`);
    const b = await openBenchmark('VSTAR', tmp);
    expect(b.items).toHaveLength(2);
    expect(b.items[1].error).toMatch(/line 2.*not valid JSON/);
    const imgs = await collect(b, [b.items[0]]);
    expect(imgs[0]).toEqual({ item: b.items[0], error: `image not found: ${path.join(tmp, 'vstar_bench', 'direct_attributes', 'sa_4690.jpg')}` });
  });
});

describe.each([
  ['whole row groups', 64 * 1024 * 1024],
  ['page streaming', 0],
])('HR-Bench (parquet, base64 strings) with %s', (_name, streamAbove) => {
  const saved = parquetSettings.streamAbove;
  beforeAll(() => (parquetSettings.streamAbove = streamAbove));
  afterAll(() => (parquetSettings.streamAbove = saved));

  test('4K: items, cycle_category, exact prompt, decoded images', async () => {
    const b = await openBenchmark('HRBench4K', DATA);
    expect(b.items.map((i) => i.id)).toEqual([0, 1, 2, 3]);
    expect(b.items.map((i) => i.label).join('')).toBe('BADC');
    expect(b.items.map((i) => i.category)).toEqual(['single', 'single', 'cross', 'cross']);
    expect(b.items.map((i) => i.extra?.cycle_category)).toEqual(['cycle_0', 'cycle_1', 'cycle_0', 'cycle_1']);
    // the option texts travel to the result file for the official rule (VLMEvalKit can_infer_text)
    expect(b.items[0].extra?.options).toEqual({ A: '12', B: '47', C: '88', D: '90' });
    expect(b.items[0].prompt).toBe(`[4K] What is the number on the bus?\nOptions:\nA. 12\nB. 47\nC. 88\nD. 90${I}`);
    const imgs = await collect(b, [b.items[0], b.items[3]]);
    expect(imgs.map((x) => x.item.id)).toEqual([0, 3]);
    expect(bytesOf(imagesOf(imgs[0])[0]).equals(JPG)).toBe(true);
    expect(bytesOf(imagesOf(imgs[1])[0]).subarray(0, 4).equals(PNG_MAGIC)).toBe(true);
    await b.close();
  });

  test('8K reads its own file', async () => {
    const b = await openBenchmark('HRBench8K', DATA);
    expect(b.items[2].prompt).toBe(`[8K] Which sign is closer to the tree?\nOptions:\nA. stop\nB. yield\nC. exit\nD. speed${I}`);
    await b.close();
  });
});

describe('HR-Bench .tsv variant and errors', () => {
  test('tsv with a quoted multi-line field', async () => {
    const b = await openBenchmark('HRBench4K', ALT);
    expect(b.items).toHaveLength(4);
    expect(b.items[0].prompt).toBe(`[4K] What is the number on the bus?\nwith a second line\tand a tab\nOptions:\nA. 12\nB. 47\nC. 88\nD. 90${I}`);
    expect(b.items[0].extra?.options).toEqual({ A: '12', B: '47', C: '88', D: '90' });
    const imgs = await collect(b, [b.items[1]]);
    expect(bytesOf(imagesOf(imgs[0])[0]).subarray(0, 4).equals(PNG_MAGIC)).toBe(true);
  });

  test('empty options are left out; a bad base64 cell is an image error', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hr-'));
    fs.mkdirSync(path.join(tmp, 'HR-Bench'));
    fs.writeFileSync(
      path.join(tmp, 'HR-Bench', 'hr_bench_4k.tsv'),
      'index\tquestion\tanswer\tcategory\tA\tB\tC\tD\tcycle_category\timage\n7\tQ?\tb\tsingle\tx\ty\t\t\tc0\t%%%notbase64\n',
    );
    const b = await openBenchmark('HRBench4K', tmp);
    expect(b.items[0].prompt).toBe(`Q?\nOptions:\nA. x\nB. y${I}`);
    expect(b.items[0].extra).toEqual({ cycle_category: 'c0', options: { A: 'x', B: 'y' } }); // like the prompt, no empty options
    expect(b.items[0].label).toBe('B');
    const imgs = await collect(b);
    expect(imgs[0]).toEqual({ item: b.items[0], error: 'image cell is not valid base64' });
  });

  test('no file names both expected files', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hr-'));
    fs.mkdirSync(path.join(tmp, 'HR-Bench'));
    await expect(openBenchmark('HRBench8K', tmp)).rejects.toThrow(
      `HRBench8K: expected file ${path.join(tmp, 'HR-Bench', 'hr_bench_8k.parquet')} (or ${path.join(tmp, 'HR-Bench', 'hr_bench_8k.tsv')}) was not found`,
    );
  });
});

describe.each([
  ['data.zip read in place', DATA],
  ['extracted folder', ALT],
])('MME-RealWorld-Lite (%s)', (_name, root) => {
  test('items, labels, Subtask as category, exact prompt, images', async () => {
    const b = await openBenchmark('MME-RealWorld-Lite', root);
    expect(b.items.map((i) => i.id)).toEqual([
      'perception/remote_sensing/position/2527', 'Perception/Autonomous_Driving/Motion/Pedestrian/11',
      'Reasoning/Autonomous_Driving/Intention/Ego/7', 'reason/monitoring/calculate/3',
    ]);
    expect(b.items.map((i) => i.label).join('')).toBe('ACDE');
    expect(b.items.map((i) => i.category)).toEqual(['Remote Sensing', 'Autonomous_Driving', 'Autonomous_Driving', 'Monitoring']);
    // the choices travel to the result file for the official rule (eval_your_results.py)
    expect(b.items[3].extra).toEqual({
      task: 'Reasoning',
      subtask: 'Monitoring',
      fine_category: 'calculate', // the JSON's Category, for the official per-Category breakdown
      choices: ['(A) 2', '(B) 4', '(C) 6', '(D) 8', "(E) This image doesn't feature people."],
    });
    expect(b.items[0].prompt).toBe(
      `Where is the red car?\nOptions:\n(A) top left\n(B) top right\n(C) bottom left\n(D) bottom right\n(E) This image doesn't feature the position.${I}`,
    );
    const imgs = await collect(b);
    expect(bytesOf(imagesOf(imgs[0])[0]).equals(JPG)).toBe(true);
    expect(bytesOf(imagesOf(imgs[2])[0]).subarray(0, 4).equals(PNG_MAGIC)).toBe(true);
    await b.close();
  });
});

test('MME-RealWorld-Lite: neither layout names both expected files', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mme-'));
  await expect(openBenchmark('MME-RealWorld-Lite', tmp)).rejects.toThrow(
    `expected file ${path.join(tmp, 'MME-RealWorld-Lite', 'data', 'MME-RealWorld-Lite.json')} (or ${path.join(tmp, 'MME-RealWorld-Lite', 'data.zip')}) was not found`,
  );
});

test('benchmark names are case-insensitive; unknown names are rejected', () => {
  expect(parseBenchmarkList('blink, mmvp,VSTAR,hrbench4k,HRBench8K,mme-realworld-lite')).toEqual([
    'BLINK', 'MMVP', 'VSTAR', 'HRBench4K', 'HRBench8K', 'MME-RealWorld-Lite',
  ]);
  expect(() => parseBenchmarkList('MMBench')).toThrow('unknown benchmark MMBench');
});
