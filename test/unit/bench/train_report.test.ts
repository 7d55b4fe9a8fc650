// Training-benchmark figures on hand-made measurements: medians, tokens/s, MFU with and without recompute against
// the best bf16 probe, speed-ups against the fastest PyTorch row, target checks and both renderings.
import { describeCpu } from '../../../src/bench/machine';
import { DEFAULT_BATCH_SPEC } from '../../../src/bench/train_batch';
import { trainStepCost } from '../../../src/bench/train_flops';
import { DEFAULT_TRAIN_SHAPE, trainParamCounts } from '../../../src/bench/train_model';
import { buildTrainReport, renderTrainMarkdown, renderTrainText, TrainBenchInputs } from '../../../src/bench/train_report';
import { torchTrainArgs } from '../../../src/bench/train_torch';

const step = (ms: number, sys = 0.5) => ({ step_ms: ms, fwd_bwd_ms: ms - 500, optimizer_ms: 500, loss: 10, loss_ce: 9.5, loss_align: 1, grad_norm: 20, user_s: 3.5, sys_s: sys });

function inputs(): TrainBenchInputs {
  const cost = trainStepCost(DEFAULT_TRAIN_SHAPE, { sampleTokens: [1024], targets: 140, grids: [{ t: 1, h: 48, w: 48 }], boxTokens: [144], latentCount: 8 });
  return {
    date: '2026-11-24T16:00:00.000Z',
    cpu: describeCpu('vendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\nflags\t\t: avx512f avx512_bf16\n', 2),
    threads: 2,
    loadAverageAtStart: 0.1,
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
    expect(md).toMatch(/\| vreflect bf16 \| 5000 \| 4500 \| 500 \| 205 \| 12\.11 GiB \| \d+% \| \d+% \| 0\.87 of 2 \|/);
    expect(md).toMatch(/step speed vs fastest PyTorch eager 1\.40x \(>= 1\.2x\): met/);
  });

  test('PyTorch command line', () => {
    const a = torchTrainArgs({ model: '/m', batchFile: '/b.json', threads: 2, steps: 3, warmup: 1, lr: 1e-5, maxGradNorm: 1, checkpointing: true });
    expect(a[0]).toMatch(/scripts_bench\/torch_train\.py$/);
    expect(a.slice(1)).toEqual(['--model', '/m', '--batch', '/b.json', '--threads', '2', '--steps', '3', '--warmup', '1', '--lr', '0.00001', '--max-grad-norm', '1', '--checkpointing']);
  });
});
