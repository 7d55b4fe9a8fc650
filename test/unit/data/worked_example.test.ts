// method.md Appendix B (the README sample) end to end through buildSample and collate, with the Qwen2.5-VL
// tokenizer stand-in (real Qwen ids; V-Reflection's tokens at 151665..151668). Expected ids of the template
// pieces are Qwen's well-known ones; the image is the 500x375 fixture sized by smart_resize (no addon needed).
import * as path from 'path';

import { ceIgnoredIds, collate } from '../../../src/data/batch';
import { checkBatch } from '../../../src/data/batch_check';
import { loadRecordFile } from '../../../src/data/records';
import { buildSample, TrainSample } from '../../../src/data/sample';
import { resolveSpecialIds, SpecialIds } from '../../../src/data/tokenize';
import { qwen25StandIn } from '../fixtures/qwen_stand_in';
import { fakeImageLoader, FIXTURES, range } from './helpers';

const IM_START = 151644, IM_END = 151645, NL = 198, VS = 151652, VE = 151653, PAD = 151655;
const LVR_START = 151665, LVR = 151666, LVR_END = 151668;
const SYSTEM_USER = [IM_START, 8948, NL, 2610, 525, 264, 10950, 17847, 13, IM_END, NL, IM_START, 872, NL];
const ASSISTANT = [IM_END, NL, IM_START, 77091, NL];

const tok = qwen25StandIn();
let ids: SpecialIds;
let s: TrainSample;
let p0: number; // position of <|lvr_start|>

beforeAll(async () => {
  ids = resolveSpecialIds(tok);
  const rec = loadRecordFile(path.join(FIXTURES, 'a.json'))[0];
  s = await buildSample(rec, { dsName: 'ds_a', file: 'a.json', index: 0, global: 0 }, {
    tokenizer: tok, ids, latentCount: 8, merge: 2, imageFolder: path.join(FIXTURES, 'images'), loadImage: fakeImageLoader(),
  });
  p0 = s.inputIds.indexOf(LVR_START);
});

test('the special ids come from the tokenizer', () => {
  expect(ids).toEqual({ imStart: IM_START, imEnd: IM_END, visionStart: VS, visionEnd: VE, imagePad: PAD, lvrStart: LVR_START, lvr: LVR, lvrLatentEnd: 151667, lvrEnd: LVR_END, pad: 151643 });
});

test('image 500x375 -> grid (1, 26, 36), 234 image tokens, 936 patch rows', () => {
  expect(s.images.map((im) => im.grid)).toEqual([[1, 26, 36]]);
  expect(s.imageTokens).toEqual([234]);
  expect(s.images[0].pixelValues.length).toBe(936 * 1176);
});

test('prompt layout: system, user with vision tokens and the question right after <|vision_end|>, assistant', async () => {
  const a = Array.from(s.inputIds);
  expect(a.slice(0, 14)).toEqual(SYSTEM_USER);
  expect(a[14]).toBe(VS);
  expect(a.slice(15, 249)).toEqual(new Array(234).fill(PAD));
  expect(a[249]).toBe(VE);
  const question = 'Can you describe the lower apparel of the child on the swing?\nProvide a short and direct response.';
  const qIds = await tok.encode(question);
  expect(a.slice(250, 250 + qIds.length)).toEqual(qIds);
  expect(a[250]).not.toBe(NL); // the newline after <image> is removed
  expect(a.slice(250 + qIds.length, p0)).toEqual(ASSISTANT);
  expect(p0).toBe(250 + qIds.length + 5);
});

test('response: <|lvr_start|> 8 x <|lvr|> <|lvr_end|> then the answer, <|im_end|> and a newline', () => {
  const a = Array.from(s.inputIds);
  expect(a.slice(p0, p0 + 10)).toEqual([LVR_START, ...new Array(8).fill(LVR), LVR_END]);
  expect(tok.decode(a.slice(p0 + 10))).toBe('\n<answer> The child on the swing is wearing dark blue denim shorts. </answer><|im_end|>\n');
  expect(a.slice(-2)).toEqual([IM_END, NL]);
});

test('labels: -100 on system and user pieces, the ids on the response', () => {
  const L = s.inputIds.length;
  expect(Array.from(s.labels.subarray(0, p0))).toEqual(new Array(p0).fill(-100));
  expect(Array.from(s.labels.subarray(p0))).toEqual(Array.from(s.inputIds.subarray(p0, L)));
});

test('box indices and <|lvr|> slots', () => {
  expect(s.boxTokens.map((b) => Array.from(b))).toEqual([[...range(96, 103), ...range(114, 121), ...range(132, 139), ...range(150, 157)]]);
  expect(Array.from(s.lvrSlots)).toEqual(range(p0 + 1, p0 + 9));
});

test('stage-1 and stage-2 CE targets (method.md §7.4, Appendix B)', () => {
  const L = s.inputIds.length;
  const b1 = collate([s], { imagePadId: PAD, latentCount: 8, merge: 2, ceIgnoredIds: ceIgnoredIds(1, ids) });
  const b2 = collate([s], { imagePadId: PAD, latentCount: 8, merge: 2, ceIgnoredIds: ceIgnoredIds(2, ids) });
  checkBatch(b1, { imagePad: PAD, lvr: LVR });
  // hidden at "assistant\n" predicts <|lvr_start|>; at <|lvr_start|> and slots 1..7: <|lvr|>; at slot 8: <|lvr_end|>
  expect(b1.targets[p0 - 1]).toBe(LVR_START);
  expect(Array.from(b1.targets.subarray(p0, p0 + 8))).toEqual(new Array(8).fill(LVR));
  expect(b1.targets[p0 + 8]).toBe(LVR_END);
  expect(Array.from(b1.targets.subarray(0, p0 - 1))).toEqual(new Array(p0 - 1).fill(-100));
  expect(b1.targets[L - 1]).toBe(-100);
  expect(b1.numTargets).toBe(L - p0);
  // stage 2: the 8 <|lvr|> targets are ignored; <|lvr_start|> and <|lvr_end|> stay
  expect(Array.from(b2.targets.subarray(p0, p0 + 8))).toEqual(new Array(8).fill(-100));
  expect([b2.targets[p0 - 1], b2.targets[p0 + 8]]).toEqual([LVR_START, LVR_END]);
  expect(b2.numTargets).toBe(L - p0 - 8);
});

test('M-RoPE positions: text 0..14, the 13 x 18 image at base 15, text resumes at 33', () => {
  const L = s.inputIds.length;
  const b = collate([s], { imagePadId: PAD, latentCount: 8, merge: 2, ceIgnoredIds: [] });
  const plane = (p: number) => Array.from(b.positions.subarray(p * L, (p + 1) * L));
  const [t, h, w] = [plane(0), plane(1), plane(2)];
  for (const pl of [t, h, w]) expect(pl.slice(0, 15)).toEqual(range(0, 15));
  for (let k = 0; k < 234; k++) {
    const r = Math.floor(k / 18), c = k % 18;
    expect([t[15 + k], h[15 + k], w[15 + k]]).toEqual([15, 15 + r, 15 + c]);
  }
  for (const pl of [t, h, w]) expect(pl.slice(249)).toEqual(range(33, 33 + L - 249));
});
