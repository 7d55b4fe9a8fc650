// What the golden training tests that run a trainer through the addon share (train_host_states, train_resume_cross):
// the committed PyTorch reference (cases.json, expected.safetensors, heads_init.safetensors; README.md), trainers on
// the tiny golden checkpoint, the bf16 rule of the --device cuda tests and a naive AdamW to replay optimizer steps.
import * as fs from 'fs';
import * as path from 'path';

import { openCheckpoint } from '../../src/model/checkpoint';
import { loadModelConfig, ModelConfig } from '../../src/model/config';
import { readSafetensorsHeader } from '../../src/model/safetensors';
import { loadAddon } from '../../src/native/addon';

export const HERE = __dirname;
const MODEL_DIR = path.join(HERE, '..', 'golden', 'models', 'tiny-flat');
export const golden = JSON.parse(fs.readFileSync(path.join(HERE, 'cases.json'), 'utf8'));
export const expected = loadTensors(path.join(HERE, 'expected.safetensors'));
const PATCH_DIM = 1176;

export function goldenCase(name: string): any {
  const c = golden.cases.find((x: any) => x.case === name);
  if (!c) throw new Error(`cases.json: no case ${name}`);
  return c;
}

export interface Rec { name: string; file: string; offset: number; nbytes: number; dtype: string; shape: number[] }

/** A safetensors file's tensor table in the addon's record form (what loadState / createTrainer take). */
export function records(file: string): Rec[] {
  const h = readSafetensorsHeader(file);
  return [...h.tensors].map(([name, t]) => ({
    name, file, offset: h.dataStart + t.begin, nbytes: t.end - t.begin, dtype: t.dtype, shape: t.shape,
  }));
}

/** Every F32 tensor of a safetensors file (golden outputs, trainer states: weights and AdamW moments). */
export function loadTensors(file: string): Map<string, Float32Array> {
  const h = readSafetensorsHeader(file);
  const buf = fs.readFileSync(file);
  const out = new Map<string, Float32Array>();
  for (const [name, t] of h.tensors) {
    if (t.dtype !== 'F32') throw new Error(`${file}: ${name} is ${t.dtype}, not F32`);
    const b = buf.subarray(h.dataStart + t.begin, h.dataStart + t.end);
    out.set(name, new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
  }
  return out;
}

// The generator's patch rows: v[p, c] = float32(((p*131 + c*71 + seed*977) mod 1000) / 500 - 1).
export function pixels(images: { seed: number; grid: number[] }[]): Float32Array {
  const total = images.reduce((n, im) => n + im.grid[0] * im.grid[1] * im.grid[2], 0);
  const out = new Float32Array(total * PATCH_DIM);
  let o = 0;
  for (const im of images) {
    const patches = im.grid[0] * im.grid[1] * im.grid[2];
    for (let p = 0; p < patches; p++)
      for (let c = 0; c < PATCH_DIM; c++) out[o++] = (((p * 131 + c * 71 + im.seed * 977) % 1000) / 500) - 1;
  }
  return out;
}

/** cases.json batch -> TrainBatch (src/data/batch.ts) as the addon takes it. */
export function trainBatch(b: any): any {
  const i32 = (k: string) => Int32Array.from(b[k]);
  return {
    numSamples: b.numSamples, numTokens: b.numTokens, inputIds: i32('inputIds'), cuSeqlens: i32('cuSeqlens'),
    positions: i32('positions'), labels: i32('labels'), targets: i32('targets'), numTargets: b.numTargets,
    pixelValues: pixels(b.images), patchDim: b.patchDim, numImages: b.numImages,
    numPatches: b.images.reduce((n: number, im: any) => n + im.grid[0] * im.grid[1] * im.grid[2], 0),
    imageGrids: i32('imageGrids'), cuImageTokens: i32('cuImageTokens'), numVisualTokens: b.numVisualTokens,
    cuSampleVisual: i32('cuSampleVisual'), latentCount: b.latentCount, numBoxes: b.numBoxes,
    boxTokenIdx: i32('boxTokenIdx'), boxLocalIdx: i32('boxLocalIdx'), cuBoxTokens: i32('cuBoxTokens'),
    boxSample: i32('boxSample'), lvrSlots: i32('lvrSlots'), sampleIds: new Int32Array(b.numSamples),
  };
}

let model: { cfg: ModelConfig; tensors: Rec[] } | undefined;

export interface TrainerOpts { addon?: any; device?: 'cpu' | 'cuda'; dtype?: 'fp32' | 'bf16'; optimizerStates?: string }

/** A trainer for a golden case: tiny-flat + heads_init.safetensors, the case's stage, lambdas and AdamW settings. */
export function createTrainer(c: any, opts: TrainerOpts = {}): Promise<any> {
  if (!model) {
    const cfg = loadModelConfig(MODEL_DIR);
    model = { cfg, tensors: [...openCheckpoint(MODEL_DIR, cfg).tensors, ...records(path.join(HERE, 'heads_init.safetensors'))] };
  }
  const { cfg, tensors } = model;
  return (opts.addon ?? loadAddon()).createTrainer({
    config: { text: cfg.text, vision: cfg.vision, imageTokenId: cfg.tokens.image, visionStartTokenId: cfg.tokens.visionStart },
    dtype: opts.dtype ?? 'fp32', tensors,
    train: {
      stage: c.stage, lambdaResampler: c.lambdaResampler, lambdaAttn: c.lambdaAttn, lvrId: golden.token_ids.lvr,
      beta1: c.adamw.beta1, beta2: c.adamw.beta2, eps: c.adamw.eps, weightDecay: c.adamw.weightDecay,
    },
    ...(opts.device ? { device: opts.device } : {}),
    ...(opts.optimizerStates ? { optimizerStates: opts.optimizerStates } : {}),
  });
}

/** The micro-batches of step k (0-based) of a case: their losses, in order. */
export async function forwardStep(t: any, c: any, k: number): Promise<any[]> {
  const out = [];
  for (const m of c.steps[k].micro) out.push(await t.forwardBackward(trainBatch(m.batch), { gradScale: m.gradScale }));
  return out;
}

// The emulator addon: the CUDA sources compiled as C++ against native/cuda_emu (device 'cuda' without a GPU).
const BUILD = path.join(HERE, '..', '..', 'build');
export const EMU_ADDON = path.join(BUILD, 'Release', 'vreflect_native_emu.node');
const EMU_SKIPPED = [path.join(BUILD, 'vreflect_cuda_emu_tests.skipped'), path.join(BUILD, 'Release', 'vreflect_cuda_emu_tests.skipped')].find((f) => fs.existsSync(f));
/** describe, or describe.skip where the build found no CUDA headers (the emulator tests say why). */
export const emuDescribe = EMU_SKIPPED ? describe.skip : describe;
export function loadEmuAddon(): any {
  if (!fs.existsSync(EMU_ADDON)) throw new Error(`${EMU_ADDON} not built: run npx cmake-js compile`);
  return require(EMU_ADDON);
}

/**
 * The --device cuda rule of train_parity.test.ts and native/cuda_tests/test_trainer_gpu.cc: with PyTorch's golden
 * value as the reference and the CPU trainer in bf16 as the baseline, max|x - ref| <= 2 max|base - ref| + floor.
 */
export function bf16Rule(what: string, x: ArrayLike<number>, base: ArrayLike<number>, ref: ArrayLike<number>, floor: number): void {
  expect(x.length).toBe(ref.length);
  let err = 0, errBase = 0;
  for (let i = 0; i < ref.length; i++) {
    err = Math.max(err, Math.abs(x[i] - ref[i]));
    errBase = Math.max(errBase, Math.abs(base[i] - ref[i]));
  }
  const tol = 2 * errBase + floor;
  if (!(err <= tol)) throw new Error(`${what}: err ${err.toExponential(3)} > 2 x cpu bf16 err ${errBase.toExponential(3)} + floor ${floor.toExponential(3)}`);
}
/**
 * The scalar form: floor 1e-3 of the value (stage 2: 2^-8, the KL's q/k rounding; test_trainer_gpu.cc says why).
 * With several baselines the one farthest from the reference counts (a run that mixes two backends, see
 * train_resume_cross.test.ts).
 */
export function scalarRule(what: string, x: number, base: number | number[], ref: number, stage: number): void {
  const b = (Array.isArray(base) ? base : [base]).reduce((w, v) => (Math.abs(v - ref) > Math.abs(w - ref) ? v : w));
  bf16Rule(what, [x], [b], [ref], (stage === 2 ? 2 ** -8 : 1e-3) * Math.abs(ref));
}

/** Per micro-batch losses (total, CE, latent) of a run under the rule, against the golden values of step k. */
export function lossesUnderRule(what: string, c: any, k: number, got: any[], ...bases: any[][]): void {
  for (const [m, micro] of c.steps[k].micro.entries()) {
    const e = micro.expected, w = `${what} step ${k + 1} micro ${m}`;
    const at = (f: string) => bases.map((b) => b[m][f]);
    scalarRule(`${w} loss`, got[m].loss, at('loss'), e.loss, c.stage);
    scalarRule(`${w} loss_ce`, got[m].lossCe, at('lossCe'), e.loss_ce, c.stage);
    scalarRule(`${w} loss_resampler`, got[m].lossResampler, at('lossResampler'), e.loss_resampler, c.stage);
    for (const b of bases) expect(got[m].boxes).toBe(b[m].boxes);
  }
}

/** Every trainable tensor's gradient as the trainer holds it now (after the micro-batches, before the update). */
export function trainableGrads(t: any): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const e of t.tensorList() as { name: string; trainable: boolean }[])
    if (e.trainable) out.set(e.name, t.getTensor(e.name, { grad: true }));
  return out;
}

export function globalNorm(grads: Map<string, Float32Array>): number {
  let s = 0;
  for (const g of grads.values()) for (const x of g) s += x * x;
  return Math.sqrt(s);
}

/**
 * A naive AdamW step (torch.optim.AdamW, fp64 arithmetic on the fp32 inputs) over a trainer state (a saveState
 * file's tensors: "<name>", "<name>.exp_avg", "<name>.exp_avg_sq"), with the gradients clipped by clip_grad_norm_'s
 * coefficient min(1, maxNorm / (norm + 1e-6)) for the given norm. Returns the state after the update (frozen tensors
 * unchanged). `step` is the update's count (1 for the first), `decay` the tensors with weight decay.
 */
export function adamwReplay(state: Map<string, Float32Array>, grads: Map<string, Float32Array>, decay: Set<string>,
  adamw: { beta1: number; beta2: number; eps: number; weightDecay: number }, lr: number, step: number, norm: number,
  maxNorm: number): Map<string, Float64Array> {
  const coef = Math.min(1, Math.fround(maxNorm / (norm + 1e-6)));
  const bc1 = 1 - adamw.beta1 ** step, bc2 = 1 - adamw.beta2 ** step;
  const out = new Map<string, Float64Array>();
  for (const [name, w] of state) if (!name.endsWith('.exp_avg') && !name.endsWith('.exp_avg_sq')) out.set(name, Float64Array.from(w));
  for (const [name, g] of grads) {
    const w = state.get(name)!, m = state.get(`${name}.exp_avg`)!, v = state.get(`${name}.exp_avg_sq`)!;
    if (!w || !m || !v) throw new Error(`trainer state: ${name} or its moments missing`);
    const wo = new Float64Array(w.length), mo = new Float64Array(w.length), vo = new Float64Array(w.length);
    const dfac = decay.has(name) ? 1 - lr * adamw.weightDecay : 1;
    for (let i = 0; i < w.length; i++) {
      const gi = g[i] * coef;
      mo[i] = adamw.beta1 * m[i] + (1 - adamw.beta1) * gi;
      vo[i] = adamw.beta2 * v[i] + (1 - adamw.beta2) * gi * gi;
      wo[i] = w[i] * dfac - (lr / bc1) * mo[i] / (Math.sqrt(vo[i]) / Math.sqrt(bc2) + adamw.eps);
    }
    out.set(name, wo);
    out.set(`${name}.exp_avg`, mo);
    out.set(`${name}.exp_avg_sq`, vo);
  }
  return out;
}

/**
 * A trainer state against a replayed one: every tensor (weights and moments) within `ulps` fp32 units in the last
 * place of its largest element (the native placement tests' figure for a device AdamW against the CPU's is 4).
 * Returns the worst tensor and its error in those units.
 */
export function expectStateClose(what: string, got: Map<string, Float32Array>, want: Map<string, Float64Array>, ulps = 4): { worst: string; ulps: number } {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  let worst = { worst: '', ulps: 0 };
  for (const [name, w] of want) {
    const g = got.get(name)!;
    let maxRef = 0, err = 0;
    for (let i = 0; i < w.length; i++) {
      maxRef = Math.max(maxRef, Math.abs(w[i]));
      err = Math.max(err, Math.abs(g[i] - w[i]));
    }
    const u = err / (2 ** -23 * Math.max(maxRef, 1e-30));
    if (u > worst.ulps) worst = { worst: name, ulps: u };
    if (!(u <= ulps)) throw new Error(`${what}: ${name} differs from the replayed AdamW by ${u.toFixed(2)} ulp of its max (bound ${ulps})`);
  }
  return worst;
}

/** Two states (or any tensor maps) bit for bit. */
export function expectSameBits(what: string, got: Map<string, Float32Array>, want: Map<string, Float32Array>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [name, w] of want) {
    const g = got.get(name)!;
    if (!Buffer.from(g.buffer, g.byteOffset, g.byteLength).equals(Buffer.from(w.buffer, w.byteOffset, w.byteLength)))
      throw new Error(`${what}: ${name} differs`);
  }
}
