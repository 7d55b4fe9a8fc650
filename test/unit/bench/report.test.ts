// Derived figures and target checks of the benchmark report, on hand-made measurements.
import { buildReport, BenchInputs, median, renderMarkdown, renderText, summarizeRuns } from '../../../src/bench/report';
import { describeCpu } from '../../../src/bench/machine';

const run = (prefill: number, decode: number, generated = 33) => ({ prefill_ms: prefill, vision_ms: prefill / 4, decode_ms_per_token: decode, generated });
const extra = (peak: number) => ({ peak_rss_bytes: peak, rss_after_load_bytes: 1e8, load_ms: 10, prompt_tokens: 305 });

function inputs(): BenchInputs {
  return {
    date: '2026-11-24T15:00:00.000Z',
    cpu: describeCpu('vendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\nflags\t\t: avx512f avx512_bf16\n', 2),
    threads: 2,
    loadAverageAtStart: 0.1,
    gemmPath: { bf16: 'onednn-bf16', fp32: 'onednn-f32', onednn: true },
    model: {
      dir: '/x', llmLayers: 4, vitLayers: 4, fullattBlocks: [3], parameters: 2e9, weightBytes: 4e9, image: '448x448', imageGridThw: [1, 32, 32],
      promptTokens: 305, newTokens: 32, prefillFlop: 800e9, vitFlop: 200e9, llmFlop: 600e9, decodeParamsPerToken: 1.5e9, kvBytesFp32: 1e7,
    },
    gemmOurs: [{ m: 2048, n: 2048, k: 2048, dtype: 'bf16', backend: 'b', bestMs: 1, medianMs: 1, gflops: 900, repeats: 3 }],
    gemmTorch: { ok: true, torch: '2', threads: 2, results: [{ dtype: 'bf16', m: 2048, n: 2048, k: 2048, best_ms: 1, gflops: 1000 }, { dtype: 'fp32', m: 1, n: 1, k: 1, best_ms: 1, gflops: 400 }], cpu_s: 1 },
    bandwidth: [
      { threads: 2, bytes: 1, kernel: 'avx512', bestGBps: 60, medianGBps: 50, runsGBps: [50, 60, 40] },
      { threads: 2, bytes: 1, kernel: 'avx512', bestGBps: 75, medianGBps: 70, runsGBps: [70, 75, 65] },
    ],
    ours: { bf16: summarizeRuns([run(1000, 50), run(900, 60), run(1100, 55)], extra(4.3e9), 33) },
    torch: { available: true, torch: '2.13', transformers: '5.18', figures: { bf16: summarizeRuns([run(1500, 110)], extra(3.9e9), 33) } },
  };
}

describe('bench report', () => {
  test('median', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  test('derived figures', () => {
    const r = buildReport(inputs());
    expect(r.peaks.bf16_gflops).toBe(1000); // torch beat our probe here
    expect(r.peaks.bf16_source).toMatch(/torch\.matmul/);
    expect(r.peaks.read_gbps_best).toBe(75);
    expect(r.peaks.read_gbps_median).toBe(62.5); // median of all 6 passes
    const d = r.derived.bf16!;
    expect(d.prefill_gflops).toBeCloseTo(800, 6); // 800 GFLOP in the median 1000 ms
    expect(d.prefill_pct_of_gemm_peak).toBeCloseTo(80, 6);
    expect(d.decode_bytes_per_token).toBe(3e9);
    expect(d.decode_roofline_ms).toBeCloseTo(40, 6); // 3 GB / 75 GB/s
    expect(d.decode_pct_of_roofline).toBeCloseTo((100 * 40) / 55, 6);
    expect(d.prefill_speedup_vs_torch).toBeCloseTo(1.5, 6);
    expect(d.decode_speedup_vs_torch).toBeCloseTo(2, 6);
    expect(d.rss_budget_bytes).toBeCloseTo(4e9 * 1.1 + 1e7, 0);
    expect(d.rss_within_budget).toBe(true);
  });

  test('the roofline bandwidth is the best of the probe and our GEMV', () => {
    const i = inputs();
    i.gemv = { gemm: { m: 1, n: 1, k: 1, dtype: 'bf16', backend: 'b', bestMs: 1, medianMs: 1, gflops: 1, repeats: 3 }, weightGBps: 100 };
    const r = buildReport(i);
    expect(r.peaks.read_gbps_best).toBe(100);
    expect(r.peaks.read_gbps_source).toBe('lm_head GEMV');
    expect(r.derived.bf16!.decode_roofline_ms).toBeCloseTo(30, 6);
    i.gemv.weightGBps = 50;
    expect(buildReport(i).peaks.read_gbps_source).toBe('read probe');
  });

  test('target checks pass and miss as measured', () => {
    const t = Object.fromEntries(buildReport(inputs()).targets.map((x) => [x.name, x.pass]));
    expect(t['prefill speed vs transformers bf16']).toBe(true);
    expect(t['prefill % of bf16 GEMM peak']).toBe(false); // 80% < 85%
    expect(t['decode speed vs transformers bf16']).toBe(true);
    expect(t['decode % of bandwidth roofline']).toBe(false); // 73% < 80%
    expect(t['peak RSS / (weights + 10% + KV)']).toBe(true);
  });

  test('without PyTorch the ratios are not measured, and a run that stopped early is flagged', () => {
    const i = inputs();
    i.torch = { available: false, reason: 'no torch', figures: {} };
    i.ours.bf16 = summarizeRuns([run(1000, 50, 10)], extra(5e9), 33);
    const r = buildReport(i);
    expect(r.targets[0].pass).toBeUndefined();
    expect(r.ours.bf16!.generated_ok).toBe(false);
    expect(r.derived.bf16!.rss_within_budget).toBe(false);
    const text = renderText(r);
    expect(text).toMatch(/PyTorch: not available\s+no torch/);
    expect(text).toMatch(/stopped early/);
  });

  test('text and markdown name the CPU, the GEMM path and the date', () => {
    const r = buildReport(inputs());
    const text = renderText(r);
    expect(text).toMatch(/CPU: AMD EPYC \(Zen 5, family 26 model 2\), 2 logical CPUs, no AMX, AVX-512-BF16/);
    expect(text).toMatch(/GEMM path: bf16 onednn-bf16/);
    // prefill 800 GFLOP in 1000 ms; ViT 200 GFLOP in 250 ms; LLM 600 GFLOP in the other 750 ms.
    expect(text).toMatch(/vreflect bf16\s+1000\s+250\s+55\.0\s+4\.00 GiB\s+800\s+800\s+800/);
    expect(text).not.toMatch(/other work ran during/);
    const busy = buildReport({ ...inputs(), otherLoad: { 'transformers bf16': { cores: 0.9, steal: 0.05 }, 'read probe 1': { cores: 0.01, steal: 0 } } });
    expect(renderText(busy)).toMatch(/Note: other work ran during transformers bf16 \(0\.95 cores\): those figures are low\./);
    const md = renderMarkdown(r);
    expect(md).toMatch(/### Inference benchmark \(2026-11-24\)/);
    expect(md).toMatch(/\| vreflect bf16 \| 1000 \| 250 \| 55\.0 \| 4\.00 GiB \| 80% \| 73% \|/);
    expect(md).toMatch(/\| speed-up bf16 \(transformers \/ vreflect\) \| 1\.50x \| \| 2\.00x \|/);
  });
});
