// The synthetic training micro-batch: the token layout of method.md §2.5 worked out by hand for the default
// sample, its M-RoPE positions (Appendix A), targets, box rows (§3), and the file PyTorch reads.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { buildTrainBatch, DEFAULT_BATCH_SPEC, sampleLayout, torchBatchFile, TrainBatchSpec, writeTorchBatch } from '../../../src/bench/train_batch';

const spec: TrainBatchSpec = { ...DEFAULT_BATCH_SPEC, vocab: 16384 };
// Remapped ids (train_model.ts): block of 32 at the top of the 16384-row vocabulary.
const IM_START = 16353, IM_END = 16354, V_START = 16361, V_END = 16362, PAD = 16364, LVR_START = 16374, LVR = 16375, LVR_END = 16377;

describe('bench train batch', () => {
  const b = buildTrainBatch(spec);

  test('layout of the default sample: 1024 tokens, 576 image pads, 8 latent slots', () => {
    expect(sampleLayout(spec)).toEqual({ imageTokens: 576, questionTokens: 287, grid: [1, 48, 48] });
    expect(b.numTokens).toBe(1024);
    const ids = b.inputIds;
    expect([ids[0], ids[9], ids[11], ids[14], ids[15], ids[590], ids[591]]).toEqual([IM_START, IM_END, IM_START, V_START, PAD, PAD, V_END]);
    expect(Array.from(ids).filter((x) => x === PAD).length).toBe(576);
    // question 592..878, then <|im_end|>\n<|im_start|>assistant\n at 879..883, response from 884
    expect([ids[879], ids[881], ids[884], ids[893], ids[1022]]).toEqual([IM_END, IM_START, LVR_START, LVR_END, IM_END]);
    expect(Array.from(b.lvrSlots)).toEqual([885, 886, 887, 888, 889, 890, 891, 892]);
    expect(Array.from(ids.subarray(885, 893)).every((x) => x === LVR)).toBe(true);
    const text = Array.from(ids).filter((_, i) => i > 591 && i < 879);
    expect(text.every((x) => x >= 0 && x < 16352)).toBe(true);
  });

  test('targets: the 140 response tokens, predicted from the position before each', () => {
    expect(b.numTargets).toBe(140); // <|lvr_start|> + 8 <|lvr|> + <|lvr_end|> + 128 answer + <|im_end|> + \n
    expect(b.targets[883]).toBe(LVR_START);
    expect(b.targets[884]).toBe(LVR);
    expect(b.targets[882]).toBe(-100);
    expect(b.targets[1023]).toBe(-100);
    expect(b.labels[883]).toBe(-100);
  });

  test('M-RoPE positions: text 0..14, the 24x24 merged image at 15 + (0, row, col), text on from 39', () => {
    const T = 1024, pos = (plane: number, i: number) => b.positions[plane * T + i];
    expect([pos(0, 14), pos(1, 14), pos(2, 14)]).toEqual([14, 14, 14]);
    const last = 15 + 575; // row 23, col 23
    expect([pos(0, last), pos(1, last), pos(2, last)]).toEqual([15, 38, 38]);
    expect([pos(0, 15 + 25), pos(1, 15 + 25), pos(2, 15 + 25)]).toEqual([15, 16, 16]); // row 1, col 1
    expect([pos(0, 591), pos(1, 591), pos(2, 591)]).toEqual([39, 39, 39]);
    expect(pos(0, 1023)).toBe(39 + 1023 - 591);
  });

  test('the box [0.25, 0.75]^2 covers merged rows and columns 6..17 of the 24x24 grid', () => {
    expect(b.numBoxes).toBe(1);
    const idx = Array.from(b.boxTokenIdx);
    expect(idx.length).toBe(144);
    expect(idx[0]).toBe(6 * 24 + 6);
    expect(idx[143]).toBe(17 * 24 + 17);
    expect(b.numPatches).toBe(2304);
    expect(b.pixelValues.length).toBe(2304 * 1176);
  });

  test('deterministic for a seed, different for another', () => {
    const small = { ...spec, tokensPerSample: 300, imageSize: 112 };
    const a = buildTrainBatch(small);
    expect(Array.from(buildTrainBatch(small).inputIds)).toEqual(Array.from(a.inputIds));
    expect(Array.from(buildTrainBatch(small).pixelValues.subarray(0, 100))).toEqual(Array.from(a.pixelValues.subarray(0, 100)));
    expect(Array.from(buildTrainBatch({ ...small, seed: 8 }).inputIds)).not.toEqual(Array.from(a.inputIds));
  });

  test('two samples: stacked rows for PyTorch, slots and box tokens local to each row', () => {
    const two = buildTrainBatch({ ...spec, samples: 2, tokensPerSample: 700, imageSize: 448 });
    expect(Array.from(two.cuSeqlens)).toEqual([0, 700, 1400]);
    const f = torchBatchFile(two, '/p.f32');
    expect([f.samples, f.seq_len, f.pixel_rows, f.patch_dim]).toEqual([2, 700, 2048, 1176]);
    expect(f.boxes.map((x) => x.sample)).toEqual([0, 1]);
    expect(f.lvr_slots[1]).toEqual(f.lvr_slots[0]);
    expect(f.boxes[1].tokens).toEqual(f.boxes[0].tokens);
    expect(f.positions.length).toBe(3 * 1400);
    expect(f.positions[700]).toBe(0); // positions restart in the second sample
  });

  test('writes batch.json and the raw float32 pixels', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-train-batch-'));
    try {
      const small = buildTrainBatch({ ...spec, tokensPerSample: 200, imageSize: 56, answerTokens: 10 });
      const file = writeTorchBatch(dir, small, PAD);
      const j = JSON.parse(fs.readFileSync(file, 'utf8'));
      expect(j.image_token_id).toBe(PAD);
      expect(fs.statSync(j.pixel_file).size).toBe(16 * 1176 * 4);
      expect(new Float32Array(fs.readFileSync(j.pixel_file).buffer.slice(0, 8))[1]).toBe(small.pixelValues[1]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a sample too short for its image is refused, naming the sizes', () => {
    expect(() => sampleLayout({ ...spec, tokensPerSample: 600 })).toThrow(/600 tokens per sample cannot hold a 672px image \(576 tokens\)/);
    expect(() => sampleLayout({ ...spec, imageSize: 690 })).toThrow(/multiple of 28/);
  });
});
