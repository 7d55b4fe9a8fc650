// forwardBackward(batch, { captureAttention }) returns the attention maps the latent losses use. Checked against
// the PyTorch reference of test/golden_train: the stage-2 KL recomputed here from the captured teacher and student
// maps (torch kl_div, batchmean) equals the reference loss_kl of every golden micro-batch, which it can only do if
// both maps are the ones the reference saw, in the same (sample token) coordinates. Also: student rows are
// distributions over the sample's tokens, teacher mass lies inside the box only, and capturing changes nothing.
import * as fs from 'fs';
import * as path from 'path';

import { openCheckpoint } from '../../../src/model/checkpoint';
import { loadModelConfig, ModelConfig } from '../../../src/model/config';
import { readSafetensorsHeader } from '../../../src/model/safetensors';
import { loadAddon } from '../../../src/native/addon';

const GOLDEN = path.join(__dirname, '..', '..', 'golden_train');
const MODEL_DIR = path.join(__dirname, '..', '..', 'golden', 'models', 'tiny-flat');
const golden = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'cases.json'), 'utf8'));
const PATCH_DIM = 1176;
const K = 8;

interface Rec { name: string; file: string; offset: number; nbytes: number; dtype: string; shape: number[] }
function records(file: string): Rec[] {
  const h = readSafetensorsHeader(file);
  return [...h.tensors].map(([name, t]) => ({ name, file, offset: h.dataStart + t.begin, nbytes: t.end - t.begin, dtype: t.dtype, shape: t.shape }));
}

// The golden generator's patch rows (make_golden_train.py): v[p, c] = ((p*131 + c*71 + seed*977) mod 1000) / 500 - 1.
function pixels(images: { seed: number; grid: number[] }[]): Float32Array {
  const total = images.reduce((n, im) => n + im.grid[0] * im.grid[1] * im.grid[2], 0);
  const out = new Float32Array(total * PATCH_DIM);
  let o = 0;
  for (const im of images)
    for (let p = 0; p < im.grid[0] * im.grid[1] * im.grid[2]; p++)
      for (let c = 0; c < PATCH_DIM; c++) out[o++] = ((p * 131 + c * 71 + im.seed * 977) % 1000) / 500 - 1;
  return out;
}

function trainBatch(b: any): any {
  const i32 = (k: string) => Int32Array.from(b[k]);
  return {
    numSamples: b.numSamples, numTokens: b.numTokens, inputIds: i32('inputIds'), cuSeqlens: i32('cuSeqlens'),
    positions: i32('positions'), labels: i32('labels'), targets: i32('targets'), numTargets: b.numTargets,
    pixelValues: pixels(b.images), patchDim: b.patchDim, imageGrids: i32('imageGrids'), cuImageTokens: i32('cuImageTokens'),
    cuSampleVisual: i32('cuSampleVisual'), latentCount: b.latentCount, boxTokenIdx: i32('boxTokenIdx'),
    boxLocalIdx: i32('boxLocalIdx'), cuBoxTokens: i32('cuBoxTokens'), boxSample: i32('boxSample'), lvrSlots: i32('lvrSlots'),
  };
}

let cfg: ModelConfig;
let base: Rec[];
const heads = records(path.join(GOLDEN, 'heads_init.safetensors'));
beforeAll(() => {
  cfg = loadModelConfig(MODEL_DIR);
  base = openCheckpoint(MODEL_DIR, cfg).tensors;
});

function createTrainer(c: any): Promise<any> {
  return loadAddon().createTrainer({
    config: { text: cfg.text, vision: cfg.vision, imageTokenId: cfg.tokens.image, visionStartTokenId: cfg.tokens.visionStart },
    dtype: 'fp32',
    tensors: [...base, ...heads],
    train: {
      stage: c.stage, lambdaResampler: c.lambdaResampler, lambdaAttn: c.lambdaAttn, lvrId: golden.token_ids.lvr,
      beta1: c.adamw.beta1, beta2: c.adamw.beta2, eps: c.adamw.eps, weightDecay: c.adamw.weightDecay,
    },
  });
}

// torch.nn.functional.kl_div(log(A + 1e-9), T, reduction='batchmean') summed over queries, averaged over boxes.
function klFromMaps(maps: any[]): number {
  let s = 0;
  for (const m of maps)
    for (let e = 0; e < m.teacher.length; e++) {
      const t = m.teacher[e];
      if (t > 0) s += t * (Math.log(t) - Math.log(m.student[e] + 1e-9));
    }
  return s / maps.length;
}

// Per box: rows of the student sum to 1 over the sample's tokens; the teacher's rows sum to 1 over the box's
// tokens and are exactly 0 elsewhere; the tables (sample, first image, grid, tokens) match the batch.
function checkBox(m: any, b: any, index: number, stage: number): void {
  const S = m.tokens, s = b.boxSample[index];
  expect(m.box).toBe(index);
  expect(m.sample).toBe(s);
  expect(S).toBe(b.cuSampleVisual[s + 1] - b.cuSampleVisual[s]);
  expect(b.cuImageTokens[m.image]).toBe(b.cuSampleVisual[s]);
  expect(m.grid).toEqual(Array.from(b.imageGrids.subarray(3 * m.image, 3 * m.image + 3)));
  expect(Array.from(m.boxTokens)).toEqual(Array.from(b.boxLocalIdx.subarray(b.cuBoxTokens[index], b.cuBoxTokens[index + 1])));
  expect(m.teacher.length).toBe(K * S);
  const inBox = new Set<number>(Array.from(m.boxTokens as Int32Array));
  for (let q = 0; q < K; q++) {
    let inside = 0;
    for (let j = 0; j < S; j++) {
      const v = m.teacher[q * S + j];
      if (inBox.has(j)) inside += v;
      else expect(v).toBe(0);
    }
    expect(Math.abs(inside - 1)).toBeLessThan(1e-5);
  }
  if (stage === 1) {
    expect(m.student).toBeNull();
    return;
  }
  expect(m.student.length).toBe(K * S);
  for (let q = 0; q < K; q++) {
    let sum = 0;
    for (let j = 0; j < S; j++) sum += m.student[q * S + j];
    expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
  }
}

describe('attention capture', () => {
  for (const name of ['stage2_single', 'stage2_packed']) {
    test(`${name}: KL recomputed from the captured maps equals the PyTorch reference's loss_kl`, async () => {
      const c = golden.cases.find((x: any) => x.case === name);
      const t = await createTrainer(c);
      for (const [k, step] of c.steps.entries()) {
        for (const micro of step.micro) {
          const b = trainBatch(micro.batch);
          const r = await t.forwardBackward(b, { gradScale: micro.gradScale, captureAttention: true });
          expect(r.attention.length).toBe(micro.batch.numBoxes);
          r.attention.forEach((m: any, i: number) => checkBox(m, b, i, 2));
          const kl = klFromMaps(r.attention), want = micro.expected.loss_kl;
          if (!(Math.abs(kl - want) <= 1e-4 * want)) throw new Error(`${name} step ${k + 1}: KL from maps ${kl}, reference ${want}`);
          expect(Math.abs(kl - r.lossKl)).toBeLessThanOrEqual(1e-6 * r.lossKl);
        }
        await t.optimizerStep({ lr: step.lr, maxGradNorm: c.maxGradNorm });
      }
    });
  }

  test('stage 1 captures the teacher alone; captureBoxes keeps the first boxes', async () => {
    const c = golden.cases.find((x: any) => x.case === 'stage1_packed');
    const micro = c.steps[0].micro[0];
    const b = trainBatch(micro.batch);
    const t = await createTrainer(c);
    const r = await t.forwardBackward(b, { captureAttention: true, captureBoxes: 2 });
    expect(r.attention.length).toBe(2);
    r.attention.forEach((m: any, i: number) => checkBox(m, b, i, 1));
    expect(Math.abs(r.loss - micro.expected.loss)).toBeLessThanOrEqual(1e-4 * micro.expected.loss);
  });

  test('capturing changes neither the losses nor the gradients', async () => {
    const c = golden.cases.find((x: any) => x.case === 'stage2_packed');
    const b = trainBatch(c.steps[0].micro[0].batch);
    const plain = await createTrainer(c), captured = await createTrainer(c);
    const r0 = await plain.forwardBackward(b, { gradScale: 1 });
    const r1 = await captured.forwardBackward(b, { gradScale: 1, captureAttention: true });
    expect(r0.attention).toBeUndefined();
    const { attention: _a, ...l1 } = r1;
    expect(l1).toEqual(r0);
    for (const name of ['student_resampler.cross_attn.in_proj_weight', 'lm_head.weight'])
      expect(Buffer.from(captured.getTensor(name, { grad: true }).buffer).equals(Buffer.from(plain.getTensor(name, { grad: true }).buffer))).toBe(true);
  });

  test('malformed capture options are one-line TypeErrors', async () => {
    const c = golden.cases.find((x: any) => x.case === 'stage2_single');
    const t = await createTrainer(c);
    const b = trainBatch(c.steps[0].micro[0].batch);
    expect(() => t.forwardBackward(b, { captureAttention: 'yes' })).toThrow(/'captureAttention' must be a boolean/);
    expect(() => t.forwardBackward(b, { captureAttention: true, captureBoxes: 0 })).toThrow(/'captureBoxes' must be an integer/);
    expect(() => t.forwardBackward(b, { captureBoxes: 1 })).toThrow(/captureBoxes' needs captureAttention/);
    // Flags read through the addon's opt_bool: a non-boolean never silently means the default.
    expect(() => t.getTensor('lm_head.weight', { grad: 'false' })).toThrow(/'grad' must be a boolean/);
  });
});
