// Training-benchmark figures on hand-made measurements: medians, tokens/s, MFU with and without recompute against
// the best bf16 probe, speed-ups against the fastest PyTorch row, target checks and both renderings; with gradient
// accumulation N the same step times carry N x the tokens and FLOPs.
import { describeCpu } from '../../../src/bench/machine';
import { DEFAULT_BATCH_SPEC } from '../../../src/bench/train_batch';
import { accumulatedStepCost, trainStepCost } from '../../../src/bench/train_flops';
import { DEFAULT_TRAIN_SHAPE, trainParamCounts } from '../../../src/bench/train_model';
import { buildTrainReport, renderTrainMarkdown, renderTrainText, TrainBenchInputs } from '../../../src/bench/train_report';
import { gpuBf16Peak } from '../../../src/bench/gpu_peak';
import { torchTrainArgs } from '../../../src/bench/train_torch';

const step = (ms: number, sys = 0.5) => ({ step_ms: ms, fwd_bwd_ms: ms - 500, optimizer_ms: 500, loss: 10, loss_ce: 9.5, loss_align: 1, grad_norm: 20, user_s: 3.5, sys_s: sys });

function inputs(): TrainBenchInputs {
  const cost = trainStepCost(DEFAULT_TRAIN_SHAPE, { sampleTokens: [1024], targets: 140, grids: [{ t: 1, h: 48, w: 48 }], boxTokens: [144], latentCount: 8 });
  return {
    date: '2026-11-24T16:00:00.000Z',
    cpu: describeCpu('vendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\nflags\t\t: avx512f avx512_bf16\n', 2),
    threads: 2,
    loadAverageAtStart: 0.1,
    gradient_accumulation_steps: 1,
    gemmPath: { bf16: 'onednn-bf16', fp32: 'onednn-f32', onednn: true },
    model: { dir: '/x', shape: DEFAULT_TRAIN_SHAPE, parameters: 7e8, weightBytes: 1.4e9, counts: trainParamCounts(DEFAULT_TRAIN_SHAPE, 8) },
    batch: { spec: { ...DEFAULT_BATCH_SPEC, vocab: 16384 }, tokens: 1024, targets: 140, visualTokens: 576, patches: 2304, boxTokens: [144] },
    cost,
    gemmOurs: [{ m: 2048, n: 2048, k: 2048, dtype: 'bf16', backend: 'b', bestMs: 1, medianMs: 1, gflops: 900, repeats: 3 }],
    gemmTorch: { ok: true, torch: '2', threads: 2, results: [{ dtype: 'bf16', m: 2048, n: 2048, k: 2048, best_ms: 1, gflops: 1000 }, { dtype: 'fp32', m: 1, n: 1, k: 1, best_ms: 1, gflops: 5000 }], cpu_s: 1 },
    runs: [
      { kind: 'vreflect', steps: [step(5000), step(4000, 1.5), step(6000)], peak_rss_bytes: 13e9, setup_ms: 1 },
      { kind: 'torch', steps: [step(7000)], peak_rss_bytes: 11e9, setup_ms: 1 },
      { kind: 'torch-ckpt', steps: [step(8000)], peak_rss_bytes: 10e9, setup_ms: 1 },
    ],
    errors: [],
    torch: { available: true, torch: '2.13', transformers: '5.18', adamw: 'fused' },
  };
}

/** The fixture as a step of n accumulated micro-batches, with the same measured times. */
function accumulated(n: number): TrainBenchInputs {
  const inp = inputs();
  return { ...inp, gradient_accumulation_steps: n, cost: accumulatedStepCost(inp.cost, n) };
}

describe('bench train report', () => {
  test('figures per row', () => {
    const r = buildTrainReport(inputs());
    expect(r.peak.bf16_gflops).toBe(1000); // the best bf16 probe; the fp32 one does not count
    const ours = r.rows[0];
    expect(ours.step_ms).toBe(5000);
    expect(ours.tokens_per_s).toBeCloseTo(1024 / 5, 6);
    expect(ours.mfu_pct).toBeCloseTo((100 * r.cost.modelFlop) / 5 / 1e12, 6);
    expect(ours.hfu_pct).toBeCloseTo((100 * (r.cost.modelFlop + r.cost.oursRecomputeFlop)) / 5 / 1e12, 6);
    expect(r.rows[1].hfu_pct).toBeCloseTo(r.rows[1].mfu_pct!, 9); // plain eager recomputes nothing
    expect(r.rows[2].hfu_pct! - r.rows[2].mfu_pct!).toBeCloseTo((100 * r.cost.torchCheckpointRecomputeFlop) / 8 / 1e12, 6);
    expect(ours.kernel_cpu_pct).toBeCloseTo((100 * 2.5) / (3 * 3.5 + 2.5), 6);
    expect(ours.cores_busy).toBeCloseTo((3 * 3.5 + 2.5) / 15, 6);
  });

  test('one micro-batch per step: the figures the report gave before gradient accumulation existed', () => {
    // Printed by the report code of commit 40909c3 (one micro-batch + one update per step) on this fixture.
    const r = buildTrainReport(inputs());
    expect(r.cost.modelFlop).toBe(3432192933888);
    expect(r.rows.map((x) => [x.step_ms, x.fwd_bwd_ms, x.optimizer_ms])).toEqual([[5000, 4500, 500], [7000, 6500, 500], [8000, 7500, 500]]);
    expect(r.rows.map((x) => x.micro_batch_ms)).toEqual([4500, 6500, 7500]);
    const pinned = [
      [204.8, 68.64385867776, 88.36476305407999, 1.4],
      [146.28571428571428, 49.031327626971425, 49.031327626971425, 1.4],
      [128, 42.9024116736, 55.0224560128, 1.6],
    ];
    r.rows.forEach((x, i) => {
      const [tps, mfu, hfu, speedup] = pinned[i];
      expect(x.tokens_per_s).toBeCloseTo(tps, 9);
      expect(x.mfu_pct).toBeCloseTo(mfu, 9);
      expect(x.hfu_pct).toBeCloseTo(hfu, 9);
      expect(x.speedup_vs_torch).toBeCloseTo(speedup, 9);
    });
    expect(renderTrainText(r)).toMatch(/Step: stage 1, 1 micro-batch of 1 x 1024 tokens \(.*\) \+ one AdamW update: forward \+ backward per micro-batch, then clip \+ AdamW, 2 threads/);
  });

  test('8 accumulated micro-batches in the same step time: 8 x the tokens/s and MFU, per micro-batch ms = fwd+bwd / 8', () => {
    const one = buildTrainReport(inputs());
    const r = buildTrainReport(accumulated(8));
    expect(r.cost.microBatches).toBe(8);
    expect(r.cost.modelFlop).toBe(8 * one.cost.modelFlop);
    r.rows.forEach((x, i) => {
      const y = one.rows[i];
      expect(x.step_ms).toBe(y.step_ms);
      expect(x.fwd_bwd_ms).toBe(y.fwd_bwd_ms);
      expect(x.micro_batch_ms).toBeCloseTo(y.fwd_bwd_ms / 8, 9);
      expect(x.tokens_per_s).toBeCloseTo((8 * 1024) / (y.step_ms / 1000), 9);
      expect(x.mfu_pct).toBeCloseTo(8 * y.mfu_pct!, 9);
      expect(x.hfu_pct).toBeCloseTo(8 * y.hfu_pct!, 9); // the recompute FLOPs scale too
      expect(x.speedup_vs_torch).toBeCloseTo(y.speedup_vs_torch!, 9);
    });
    expect(r.cost.oursRecomputeFlop).toBe(8 * one.cost.oursRecomputeFlop);
    expect(r.rows[0].hfu_pct! - r.rows[0].mfu_pct!).toBeCloseTo((100 * r.cost.oursRecomputeFlop) / 5 / 1e12, 9);
    expect(JSON.parse(JSON.stringify(r)).gradient_accumulation_steps).toBe(8);
  });

  test('a step of 8 micro-batches in 8x the time and the same AdamW: per-micro-batch figures compare with one micro-batch', () => {
    const inp = accumulated(8);
    // Only the forward+backward part repeats: 8 x 4500 + 500 ms.
    inp.runs[0].steps = [{ ...step(8 * 4500 + 500), fwd_bwd_ms: 8 * 4500 }];
    const r = buildTrainReport(inp);
    expect(r.rows[0].micro_batch_ms).toBe(4500);
    expect(r.rows[0].tokens_per_s).toBeCloseTo((8 * 1024) / 36.5, 9);
    expect(r.rows[0].mfu_pct).toBeCloseTo((100 * 8 * 3432192933888) / 36.5 / 1e12, 9);
  });

  test("the FLOP count must cover the step's micro-batches", () => {
    expect(() => buildTrainReport({ ...inputs(), gradient_accumulation_steps: 8 })).toThrow(/covers 1 micro-batches, the step 8/);
  });

  test('speed-up against the fastest PyTorch row, and the targets', () => {
    const r = buildTrainReport(inputs());
    expect(r.rows[0].speedup_vs_torch).toBeCloseTo(7000 / 5000, 9);
    expect(r.rows[2].speedup_vs_torch).toBeCloseTo(8000 / 5000, 9);
    expect(r.targets[0]).toMatchObject({ value: 1.4, target: 1.2, pass: true });
    expect(r.targets[1].pass).toBe(r.rows[0].mfu_pct! >= 70);
  });

  test('without PyTorch or probes the targets read "not measured"', () => {
    const inp = { ...inputs(), gemmOurs: [], gemmTorch: undefined };
    inp.runs = inp.runs.slice(0, 1);
    const r = buildTrainReport(inp);
    expect(r.rows[0].mfu_pct).toBeUndefined();
    expect(r.targets.map((t) => t.pass)).toEqual([undefined, undefined]);
    expect(renderTrainText(r)).toMatch(/not measured/);
  });

  test('renderings name the setup, every row and the verdicts', () => {
    const inp = inputs();
    inp.errors.push({ kind: 'torch-ckpt', error: 'torch bf16 ckpt: exit code 1: boom' });
    const r = buildTrainReport(inp);
    const text = renderTrainText(r);
    expect(text).toMatch(/vocabulary cut to 16384 rows/);
    expect(text).toMatch(/vreflect bf16 +5000/);
    expect(text).toMatch(/PyTorch eager bf16 autocast \+ grad ckpt +8000/);
    expect(text).toMatch(/failed: torch bf16 ckpt: exit code 1: boom/);
    expect(text).toMatch(/step speed vs fastest PyTorch eager +1\.40x .*PASS/);
    const md = renderTrainMarkdown(r);
    expect(md).toMatch(/^### Training benchmark \(2026-11-24\)/);
    expect(md).toMatch(/\| vreflect bf16 \| 5000 \| 4500 \| 4500 \| 500 \| 205 \| 12\.11 GiB \| 69% \| 88% \| 0\.87 of 2 \|/);
    expect(md).toMatch(/step speed vs fastest PyTorch eager 1\.40x \(>= 1\.2x\): met/);
  });

  test('renderings with 8 micro-batches per step', () => {
    const r = buildTrainReport(accumulated(8));
    const text = renderTrainText(r);
    expect(text).toMatch(/Step: stage 1, 8 micro-batches of 1 x 1024 tokens \(672x672 image = 576 image tokens per sample, .*\) \+ one AdamW update: forward \+ backward per micro-batch \(the same one each time, gradients accumulated\), then clip \+ AdamW \(upstream's recipe: 8 accumulation steps\), 2 threads/);
    expect(text).toMatch(/FLOPs per step \(8 micro-batches\): model 27\.46 TFLOP/); // 8 x 3.432
    expect(text).toMatch(/per micro-batch/);
    expect(text).toMatch(/vreflect bf16 +5000 +4500 +563 +500 +1638 /);
    const md = renderTrainMarkdown(r);
    expect(md).toMatch(/\*\*Step\*\*: stage 1, 8 micro-batches of 1 x 1024 tokens/);
    expect(md).toMatch(/Medians of 3 timed steps \(8 micro-batches \+ one AdamW update each\)/);
    expect(md).toMatch(/\| vreflect bf16 \| 5000 \| 4500 \| 563 \| 500 \| 1638 \| 12\.11 GiB \| 549% \| 707% \| 0\.87 of 2 \|/);
  });

  test('our run without gradient checkpointing: the label, HFU and the setup line count only the lm_head recompute', () => {
    const inp = inputs();
    inp.runs[0].checkpointing = false;
    const r = buildTrainReport(inp);
    expect(r.rows[0].label).toBe('vreflect bf16, no recompute');
    expect(r.rows[0].hfu_pct! - r.rows[0].mfu_pct!).toBeCloseTo((100 * r.cost.oursKeptRecomputeFlop) / 5 / 1e12, 9);
    const text = renderTrainText(r);
    expect(text).toContain(`recompute on top: vreflect ${(r.cost.oursKeptRecomputeFlop / 1e12).toFixed(2)} (lm_head), PyTorch grad ckpt`);
    inp.runs[0].checkpointing = true;
    expect(renderTrainText(buildTrainReport(inp))).toContain(`recompute on top: vreflect ${(r.cost.oursRecomputeFlop / 1e12).toFixed(2)} (layers + lm_head), PyTorch grad ckpt`);
  });

  test('PyTorch command line', () => {
    const a = torchTrainArgs({ model: '/m', batchFile: '/b.json', threads: 2, steps: 3, warmup: 1, lr: 1e-5, maxGradNorm: 1, gradientAccumulationSteps: 8, checkpointing: true });
    expect(a[0]).toMatch(/scripts_bench\/torch_train\.py$/);
    expect(a.slice(1)).toEqual(['--model', '/m', '--batch', '/b.json', '--threads', '2', '--steps', '3', '--warmup', '1', '--lr', '0.00001', '--max-grad-norm', '1', '--grad-accum', '8', '--checkpointing']);
    const plain = torchTrainArgs({ model: '/m', batchFile: '/b.json', threads: 2, steps: 3, warmup: 1, lr: 1e-5, maxGradNorm: 1, gradientAccumulationSteps: 1, checkpointing: false });
    expect(plain.slice(-2)).toEqual(['--grad-accum', '1']);
    const gpu = torchTrainArgs({ model: '/m', batchFile: '/b.json', threads: 2, steps: 3, warmup: 1, lr: 1e-5, maxGradNorm: 1, gradientAccumulationSteps: 1, checkpointing: false, device: 'cuda' });
    expect(gpu.slice(-2)).toEqual(['--device', 'cuda']);
  });

  test('--device cuda: MFU against the GPU datasheet peak (not the host probes), issue 6 target, device memory column', () => {
    expect(gpuBf16Peak('NVIDIA H100 80GB HBM3')?.bf16_gflops).toBe(989e3);
    expect(gpuBf16Peak('NVIDIA H100 PCIe')?.bf16_gflops).toBe(756e3);
    expect(gpuBf16Peak('NVIDIA H200')?.bf16_gflops).toBe(989e3);
    expect(gpuBf16Peak('CUDA emulator (CPU)')).toBeUndefined();
    const inp = inputs();
    inp.runs[0].peak_device_bytes = 20 * 1024 ** 3;
    const name = 'NVIDIA H100 80GB HBM3';
    const r = buildTrainReport({ ...inp, device: { ours: name, torch: name }, gpuPeak: gpuBf16Peak(name) });
    expect(r.peak.bf16_gflops).toBe(989e3); // not the 1000 GFLOP/s host probe
    expect(r.rows[0].mfu_pct).toBeCloseTo((100 * r.cost.modelFlop) / 5 / 989e12, 9);
    expect(r.rows[0].peak_device_bytes).toBe(20 * 1024 ** 3);
    expect(r.targets.map((t) => [t.name, t.target])).toEqual([['whole step MFU (% of the GPU bf16 peak)', 40]]);
    const text = renderTrainText(r);
    expect(text).toContain(`Device: vreflect on ${name}, PyTorch on ${name}`);
    expect(text).toContain('H100 SXM dense bf16 datasheet peak 989 TFLOP/s (not measured)');
    expect(text).toContain('20.00 GiB');
    expect(text).toContain('Targets (issue 6, GPU):');
    expect(renderTrainMarkdown(r)).toContain('| peak RSS | peak device | MFU |');
    // an unknown GPU (the emulator): no MFU rather than one against the host's probes
    const emu = buildTrainReport({ ...inputs(), device: { ours: 'CUDA emulator (CPU)' }, gpuPeak: undefined });
    expect(emu.rows[0].mfu_pct).toBeUndefined();
    expect(renderTrainText(emu)).toContain('unknown GPU: no MFU');
  });
});
