// Both training sides on the golden tiny-flat model (D = 64, 3 layers, vocabulary 416) with a small synthetic batch:
// token and target counts, trainable parameters (PyTorch's own count against the checkpoint's tensor list), that
// repeated steps on the same batch lower the loss, and that N accumulated passes scaled by 1/N give the gradient of
// one pass (same grad norm before clipping: a missing 1/N would show as N x the norm). Our side needs the built addon (like parity.test.ts); the
// PyTorch side runs only when VREFLECT_PYTHON names a Python with torch + transformers.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { openCheckpoint } from '../../../src/model/checkpoint';
import { loadModelConfig } from '../../../src/model/config';
import { findTorchPython } from '../../../src/bench/torch_side';
import { buildTrainBatch, DEFAULT_BATCH_SPEC, TrainBatchSpec, writeTorchBatch } from '../../../src/bench/train_batch';
import { runTorchTrain } from '../../../src/bench/train_torch';
import { measureOursTrain } from '../../../src/bench/train_worker';

const MODEL = path.join(__dirname, '..', '..', 'golden', 'models', 'tiny-flat');
// tiny-flat's config: image pad 372, vision start/end 369/370, LVR tokens 374..377; text ids stay below 350.
const spec: TrainBatchSpec = {
  ...DEFAULT_BATCH_SPEC, tokensPerSample: 120, imageSize: 112, answerTokens: 20, vocab: 416,
  ids: { imStart: 351, imEnd: 352, visionStart: 369, visionEnd: 370, imagePad: 372, lvrStart: 374, lvr: 375, lvrLatentEnd: 376, lvrEnd: 377, textLimit: 350 },
};
const TARGETS = 1 + 8 + 1 + 20 + 2; // <|lvr_start|>, 8 slots, <|lvr_end|>, the answer, <|im_end|>\n

test('our side: counts and a falling loss', async () => {
  const r = await measureOursTrain({ model: MODEL, batch: spec, dtype: 'bf16', threads: 1, steps: 3, warmup: 0, lr: 1e-2, maxGradNorm: 1, gradientAccumulationSteps: 1 });
  expect([r.tokens, r.targets, r.steps.length]).toEqual([120, TARGETS, 3]);
  expect(r.steps.every((s) => Number.isFinite(s.loss) && s.step_ms > 0 && s.optimizer_ms > 0)).toBe(true);
  expect(r.steps[2].loss).toBeLessThan(r.steps[0].loss);
  expect(r.peak_rss_bytes).toBeGreaterThanOrEqual(r.rss_after_setup_bytes);
});

test('our side: N accumulated passes of the micro-batch = one pass (grad norm before clipping, losses)', async () => {
  const req = { model: MODEL, batch: spec, dtype: 'bf16' as const, threads: 1, steps: 2, warmup: 0, lr: 1e-2, maxGradNorm: 1 };
  const one = await measureOursTrain({ ...req, gradientAccumulationSteps: 1 });
  // gradScale 1/2 is exact in bf16: the same gradients up to summation order, both steps. 1/3 rounds the bf16
  // gradients (6e-4 relative on the first norm; lr 1e-2 amplifies that in later steps), so only the first step is
  // compared, loosely. A missing 1/N would show as N x the norm.
  for (const [n, tol, compared] of [[2, 1e-6, 2], [3, 1e-2, 1]]) {
    const acc = await measureOursTrain({ ...req, gradientAccumulationSteps: n });
    expect(acc.gradient_accumulation_steps).toBe(n);
    expect([acc.tokens, acc.targets, acc.steps.length]).toEqual([120, TARGETS, 2]); // per micro-batch
    for (let i = 0; i < compared; i++) {
      expect(Math.abs(acc.steps[i].grad_norm / one.steps[i].grad_norm - 1)).toBeLessThan(tol);
      expect(Math.abs(acc.steps[i].loss / one.steps[i].loss - 1)).toBeLessThan(tol);
    }
    expect(acc.steps[1].loss).toBeLessThan(acc.steps[0].loss);
  }
});

const py = process.env.VREFLECT_PYTHON ? findTorchPython(process.env.VREFLECT_PYTHON) : undefined;
(py?.available ? test : test.skip)('PyTorch side (VREFLECT_PYTHON): same counts, trains every LLM tensor and the BCM', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-train-sides-'));
  try {
    const file = writeTorchBatch(dir, buildTrainBatch(spec), 372);
    const r = await runTorchTrain(py!, { model: MODEL, batchFile: file, threads: 1, steps: 3, warmup: 0, lr: 1e-2, maxGradNorm: 1, gradientAccumulationSteps: 1, checkpointing: true });
    expect([r.tokens, r.targets, r.steps.length, r.checkpointing]).toEqual([120, TARGETS, 3, true]);
    const cfg = loadModelConfig(MODEL);
    const llm = openCheckpoint(MODEL, cfg).tensors.filter((t) => !t.name.startsWith('visual.')).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    const D = 64;
    expect(r.trainable_params).toBe(llm + 8 * D + 4 * D * D + 4 * D + 2 * D); // + BCM: queries, in/out proj, LayerNorm
    expect(r.steps[2].loss).toBeLessThan(r.steps[0].loss);
    // N accumulated passes of (loss / N).backward(): the same gradient, so the same norm and the same next loss
    // (1/2 is exact in bf16: both steps; 1/3 rounds the bf16 gradients: the first step, loosely). A missing 1/N
    // would show as N x the norm.
    for (const [n, tol, compared] of [[2, 1e-6, 2], [3, 1e-2, 1]]) {
      const acc = await runTorchTrain(py!, { model: MODEL, batchFile: file, threads: 1, steps: 2, warmup: 0, lr: 1e-2, maxGradNorm: 1, gradientAccumulationSteps: n, checkpointing: true });
      expect([acc.grad_accum, acc.tokens, acc.steps.length]).toEqual([n, 120, 2]);
      for (let i = 0; i < compared; i++) {
        expect(Math.abs(acc.steps[i].grad_norm / r.steps[i].grad_norm - 1)).toBeLessThan(tol);
        expect(Math.abs(acc.steps[i].loss / r.steps[i].loss - 1)).toBeLessThan(tol);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
