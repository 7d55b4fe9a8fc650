// Resume across backends: a trainer state saved by the CPU trainer (train/state_io's file: fp32 masters, AdamW
// moments, step) continued by the GPU trainer (--device cuda, through the emulator addon), and the reverse, for a
// stage-1 and a stage-2 golden case (test/golden_train/README.md). Step 1 runs uninterrupted on both backends (CPU
// in bf16, GPU with its optimizer states on the device), each saves its state, and the other backend resumes from
// it for step 2:
//   - the state passes through the resuming trainer unchanged: loaded and saved again, every tensor (weights and
//     moments) is bit-identical and the step count is carried;
//   - step 2 on the resumed trainer is held to the rule of the uninterrupted runs (train_parity.test.ts:
//     |x - PyTorch| <= 2 |baseline - PyTorch| + floor) for every micro-batch's losses and the grad norm, with the
//     uninterrupted step 2 of the CPU bf16 trainer or of the GPU trainer as the baseline, whichever is farther from
//     PyTorch: a resumed run carries one backend's step-1 rounding into the other's step 2, so their errors add
//     (stage1_packed step 2 micro 1, loss 5.4311: CPU bf16 +0.0073, GPU +0.0110, GPU resumed from the CPU's state
//     +0.0200, which is the CPU's state error plus the GPU's forward rounding on the same weights, +0.0127; against
//     the CPU baseline alone the bound would be 0.0199);
//   - its update continues the loaded optimizer: the state after step 2 equals a naive fp64 AdamW (golden.ts
//     adamwReplay, step count 2) applied to the loaded state with the gradients the resumed trainer held, within
//     4 ulp of each tensor's largest element. Fresh moments or a lost step count move the weights by a large
//     fraction of lr, far outside that bound.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { readSafetensorsHeader } from '../../src/model/safetensors';

import {
  adamwReplay, createTrainer, emuDescribe, expectSameBits, expectStateClose, forwardStep, globalNorm, goldenCase,
  loadEmuAddon, loadTensors, lossesUnderRule, records, scalarRule, trainableGrads, TrainerOpts,
} from './golden';

// Both have two steps, the second with accumulation over two micro-batches (stage2_packed: packed samples in step 1).
const CASES = ['stage1_packed', 'stage2_packed'];

emuDescribe('trainer state saved on one backend, resumed on the other (emulator addon)', () => {
  let emu: any;
  let dir: string;
  beforeAll(() => {
    emu = loadEmuAddon();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vreflect-resume-cross-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe.each(CASES)('%s', (name) => {
    const c = goldenCase(name);
    const cpuOpts: TrainerOpts = { device: 'cpu', dtype: 'bf16' };
    const gpuOpts: TrainerOpts = { device: 'cuda', dtype: 'bf16', optimizerStates: 'gpu' };
    const saved = { cpu: '', cuda: '' };   // each backend's state after step 1
    const step2: { losses: any[]; norm: number }[] = [];  // both uninterrupted step 2s: the rule's baselines
    const step1 = async (backend: 'cpu' | 'cuda', opts: TrainerOpts) => {
      const t = await createTrainer(c, { addon: emu, ...opts });
      expect(t.device).toBe(backend);
      await forwardStep(t, c, 0);
      await t.optimizerStep({ lr: c.steps[0].lr, maxGradNorm: c.maxGradNorm });
      saved[backend] = path.join(dir, `${name}.${backend}.step1.safetensors`);
      await t.saveState(saved[backend]);
      return t;
    };
    beforeAll(async () => {
      for (const t of [await step1('cpu', cpuOpts), await step1('cuda', gpuOpts)]) {
        const losses = await forwardStep(t, c, 1);
        step2.push({ losses, norm: (await t.optimizerStep({ lr: c.steps[1].lr, maxGradNorm: c.maxGradNorm })).gradNorm });
      }
    });

    test.each([
      ['cpu', 'cuda', '', gpuOpts],
      ['cpu', 'cuda', ' (host optimizer states)', { ...gpuOpts, optimizerStates: 'host' }],
      ['cuda', 'cpu', '', cpuOpts],
    ] as ['cpu' | 'cuda', 'cpu' | 'cuda', string, TrainerOpts][])('saved on %s, resumed on %s%s: state carried bit for bit, step 2 under the rule, update = AdamW continued', async (from, to, placement, opts) => {
      const where = `${name} ${from} -> ${to}${placement}`;
      const file = saved[from];
      const meta = readSafetensorsHeader(file).metadata;
      expect([meta.format, meta.step, meta.stage]).toEqual(['vreflect-trainer-state', '1', String(c.stage)]);
      const t = await createTrainer(c, { addon: emu, ...opts });
      expect(t.device).toBe(to);
      await t.loadState({ step: Number(meta.step), tensors: records(file) });
      expect(t.stepCount).toBe(1);
      const loaded = loadTensors(file);
      const again = path.join(dir, `${where.replace(/\W+/g, '_')}.loaded.safetensors`);
      await t.saveState(again);
      expectSameBits(`${where}: state loaded and saved again`, loadTensors(again), loaded);

      const step = c.steps[1];
      lossesUnderRule(where, c, 1, await forwardStep(t, c, 1), ...step2.map((s) => s.losses));
      const grads = trainableGrads(t);
      const o = await t.optimizerStep({ lr: step.lr, maxGradNorm: c.maxGradNorm });
      expect(o.step).toBe(2);
      scalarRule(`${where} step 2 grad norm`, o.gradNorm, step2.map((s) => s.norm), step.gradNorm, c.stage);
      expect(Math.abs(o.gradNorm - globalNorm(grads))).toBeLessThanOrEqual(1e-6 * o.gradNorm);
      const after = path.join(dir, `${where.replace(/\W+/g, '_')}.step2.safetensors`);
      await t.saveState(after);
      const decay = new Set((t.tensorList() as { name: string; decay: boolean }[]).filter((e) => e.decay).map((e) => e.name));
      const want = adamwReplay(loaded, grads, decay, c.adamw, step.lr, 2, o.gradNorm, c.maxGradNorm);
      expectStateClose(`${where} state after step 2`, loadTensors(after), want);
    });
  });
});
