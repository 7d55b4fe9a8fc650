// Stage 2 (DAC distillation, method.md §9) on the GPU trainer with its optimizer states on the host
// (`--optimizer-states host`: fp32 masters and AdamW moments in host memory, the update by the CPU AdamW), through
// the emulator addon, on golden cases of test/golden_train (README.md). The placement may change where the step
// runs, not what it computes, so the run is held to what the `gpu` placement is held to, against PyTorch and the
// CPU trainer rather than against how the placement is built:
//   - every micro-batch's losses and each step's grad norm within the --device cuda rule (train_parity.test.ts:
//     |x - PyTorch| <= 2 |CPU bf16 trainer - PyTorch| + floor), step 1's listed gradients too;
//   - before the first update (same device forward and backward) its losses and gradients are the gpu
//     placement's to 1e-6;
//   - each update is AdamW: the trainer state saved after the step equals a naive fp64 AdamW (golden.ts
//     adamwReplay) applied to the state saved before it, with the gradients the trainer held and the clip
//     coefficient of the grad norm it reported, within 4 ulp of each tensor's largest element (weights and both
//     moments); the reported norm is the norm of those gradients.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import {
  adamwReplay, bf16Rule, createTrainer, emuDescribe, expectStateClose, expected, forwardStep, globalNorm, goldenCase,
  loadEmuAddon, loadTensors, lossesUnderRule, scalarRule, trainableGrads,
} from './golden';

// Packed samples in step 1, accumulation over two micro-batches in step 2. One case: the placement moves the update,
// not the forward / backward that the other cases vary (lambda_attn: train_parity.test.ts, gpu placement).
const CASES = ['stage2_packed'];

emuDescribe('--device cuda --optimizer-states host, stage 2 (emulator addon)', () => {
  let emu: any;
  let dir: string;
  beforeAll(() => {
    emu = loadEmuAddon();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vreflect-host-states-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test.each(CASES)('%s: losses, grad norms and gradients under the rule, updates = AdamW replayed on the saved state', async (name) => {
    const c = goldenCase(name);
    const host = await createTrainer(c, { addon: emu, device: 'cuda', dtype: 'bf16', optimizerStates: 'host' });
    const gpu = await createTrainer(c, { addon: emu, device: 'cuda', dtype: 'bf16', optimizerStates: 'gpu' });
    const cpu = await createTrainer(c, { addon: emu, device: 'cpu', dtype: 'bf16' });
    expect(host.device).toBe('cuda');
    const list: { name: string; trainable: boolean; decay: boolean }[] = host.tensorList();
    const decay = new Set(list.filter((e) => e.decay).map((e) => e.name));
    expect(list.filter((e) => e.name.startsWith('box_feature_resampler.')).every((e) => !e.trainable)).toBe(true);
    const file = (k: number) => path.join(dir, `${name}.${k}.safetensors`);
    await host.saveState(file(0));
    for (const [k, step] of c.steps.entries()) {
      const where = `${name} host`;
      const lh = await forwardStep(host, c, k), lg = await forwardStep(gpu, c, k), lc = await forwardStep(cpu, c, k);
      lossesUnderRule(where, c, k, lh, lc);
      const grads = trainableGrads(host);
      if (k === 0) {
        for (const [m, l] of lh.entries())
          for (const f of ['loss', 'lossCe', 'lossResampler', 'lossMse', 'lossKl'])
            expect([`micro ${m} ${f}`, Math.abs(l[f] - lg[m][f]) <= 1e-6 * Math.abs(lg[m][f])]).toEqual([`micro ${m} ${f}`, true]);
        for (const [n, g] of grads) {
          const r = gpu.getTensor(n, { grad: true }) as Float32Array;
          let err = 0, mx = 0;
          for (let i = 0; i < r.length; i++) { err = Math.max(err, Math.abs(g[i] - r[i])); mx = Math.max(mx, Math.abs(r[i])); }
          expect([n, err <= 1e-6 * mx]).toEqual([n, true]);
        }
        for (const n of step.grads) {
          const ref = expected.get(`${name}.step1.grad.${n}`)!;
          const maxRef = ref.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
          bf16Rule(`${where} step 1 grad ${n}`, grads.get(n)!, cpu.getTensor(n, { grad: true }), ref, 1e-3 * maxRef);
        }
      }
      const oh = await host.optimizerStep({ lr: step.lr, maxGradNorm: c.maxGradNorm });
      await gpu.optimizerStep({ lr: step.lr, maxGradNorm: c.maxGradNorm });
      const oc = await cpu.optimizerStep({ lr: step.lr, maxGradNorm: c.maxGradNorm });
      expect(oh.step).toBe(k + 1);
      scalarRule(`${where} step ${k + 1} grad norm`, oh.gradNorm, oc.gradNorm, step.gradNorm, c.stage);
      expect(Math.abs(oh.gradNorm - globalNorm(grads))).toBeLessThanOrEqual(1e-6 * oh.gradNorm);
      await host.saveState(file(k + 1));
      const want = adamwReplay(loadTensors(file(k)), grads, decay, c.adamw, step.lr, k + 1, oh.gradNorm, c.maxGradNorm);
      expectStateClose(`${where} step ${k + 1} state`, loadTensors(file(k + 1)), want);
    }
  });
});
