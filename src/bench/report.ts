// Turns the raw measurements into the figures the issue asks for (ours vs transformers, % of the GEMM and
// bandwidth rooflines, RSS budget, target checks) and renders them as a text table, JSON and a README snippet.
import type { CpuDescription } from './machine';
import { cpuLine } from './machine';
import type { BandwidthProbe, GemmProbe } from './native_probes';
import type { RunTiming } from './ours_worker';
import type { TorchGemmResult } from './torch_side';

export type Dtype = 'bf16' | 'fp32';

export interface EngineFigures {
  prefill_ms: number; // medians over the repeats
  vision_ms: number;
  decode_ms_per_token: number;
  peak_rss_bytes: number;
  rss_after_load_bytes: number;
  load_ms: number;
  prompt_tokens: number;
  generated_ok: boolean; // every repeat decoded the requested token count
  runs: RunTiming[];
  /** Other work during this measurement: cores busy besides the measuring process, and hypervisor steal. */
  foreign?: { cores: number; steal: number };
}

export interface BenchInputs {
  date: string;
  cpu: CpuDescription;
  /** what ran both engines: "cpu", or (bench infer --device cuda) our GPU's name and torch's */
  device?: { ours?: string; torch?: string };
  threads: number;
  loadAverageAtStart: number;
  gemmPath: { bf16: string; fp32: string; onednn: boolean } | undefined;
  model: {
    dir: string;
    llmLayers: number;
    vitLayers: number;
    fullattBlocks: number[];
    parameters: number;
    weightBytes: number; // on disk (bf16), what the engine mmaps
    image: string;
    imageGridThw?: number[];
    promptTokens: number;
    newTokens: number;
    prefillFlop: number;
    /** The prefill FLOPs of the vision tower (patch embed, blocks, merger) and of the LLM (layers, lm_head). */
    vitFlop: number;
    llmFlop: number;
    decodeParamsPerToken: number;
    kvBytesFp32: number; // KV cache at the end of a run (fp32 rows, as the CPU engine keeps them)
  };
  gemmOurs: GemmProbe[];
  gemmTorch?: TorchGemmResult;
  /** Our bf16 GEMV on lm_head's shape: how fast decode's kernel streams weights (compare with the probe). */
  gemv?: { gemm: GemmProbe; weightGBps: number };
  bandwidth: BandwidthProbe[];
  /** Per measurement phase: cores other work kept busy meanwhile, and hypervisor steal (see machine.foreignLoad). */
  otherLoad?: Record<string, { cores: number; steal: number }>;
  ours: Partial<Record<Dtype, EngineFigures>>;
  oursError?: Partial<Record<Dtype, string>>;
  torch: { available: boolean; reason?: string; torch?: string; transformers?: string; figures: Partial<Record<Dtype, EngineFigures>>; errors?: Partial<Record<Dtype, string>> };
}

export interface DerivedFigures {
  prefill_gflops?: number;
  prefill_pct_of_gemm_peak?: number;
  decode_bytes_per_token: number;
  decode_roofline_ms: number; // bytes per token / best measured bandwidth
  decode_pct_of_roofline?: number;
  prefill_speedup_vs_torch?: number; // transformers ms / ours ms
  decode_speedup_vs_torch?: number;
  rss_budget_bytes: number; // weights in memory + 10% + KV
  rss_within_budget?: boolean;
}

export interface TargetCheck {
  name: string;
  value?: number;
  target: number;
  unit: string;
  pass?: boolean; // undefined: not measured
}

export interface BenchReport extends BenchInputs {
  peaks: {
    bf16_gflops?: number;
    bf16_source?: string;
    fp32_gflops?: number;
    fp32_source?: string;
    read_gbps_best?: number; // what the decode roofline uses
    read_gbps_source?: string;
    read_gbps_median?: number; // median pass of the read probe
  };
  derived: Partial<Record<Dtype, DerivedFigures>>;
  targets: TargetCheck[];
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Medians of a set of runs; `expectedGenerated` = new tokens + 1 (the prefill's token). */
export function summarizeRuns(
  runs: RunTiming[],
  extra: { peak_rss_bytes: number; rss_after_load_bytes: number; load_ms: number; prompt_tokens: number },
  expectedGenerated: number,
): EngineFigures {
  return {
    prefill_ms: median(runs.map((r) => r.prefill_ms)),
    vision_ms: median(runs.map((r) => r.vision_ms)),
    decode_ms_per_token: median(runs.map((r) => r.decode_ms_per_token)),
    generated_ok: runs.every((r) => r.generated === expectedGenerated),
    runs,
    ...extra,
  };
}

/** Best GFLOP/s over every measurement of one dtype (ours through the op layer and torch.matmul). */
function gemmPeak(inp: BenchInputs, dtype: Dtype): { gflops?: number; source?: string } {
  let best: { gflops?: number; source?: string } = {};
  for (const g of inp.gemmOurs.filter((x) => x.dtype === dtype)) {
    if (!best.gflops || g.gflops > best.gflops) best = { gflops: g.gflops, source: `vreflect linear ${g.m}x${g.n}x${g.k} (${g.backend})` };
  }
  for (const g of inp.gemmTorch?.results.filter((x) => x.dtype === dtype) ?? []) {
    if (!best.gflops || g.gflops > best.gflops) best = { gflops: g.gflops, source: `torch.matmul ${g.m}x${g.n}x${g.k}` };
  }
  return best;
}

export function buildReport(inp: BenchInputs): BenchReport {
  const bf = gemmPeak(inp, 'bf16');
  const fp = gemmPeak(inp, 'fp32');
  // The roofline uses the best read rate seen by any method: the probe, or our GEMV streaming lm_head (a
  // kernel that reads faster than the probe proves the machine can), so the % of roofline never flatters.
  const probeBest = inp.bandwidth.length ? Math.max(...inp.bandwidth.map((b) => b.bestGBps)) : undefined;
  const gemvRate = inp.gemv?.weightGBps;
  const bwBest = probeBest === undefined ? gemvRate : gemvRate === undefined ? probeBest : Math.max(probeBest, gemvRate);
  const bwSource = bwBest === undefined ? undefined : bwBest === probeBest ? 'read probe' : 'lm_head GEMV';
  const bwMedian = inp.bandwidth.length ? median(inp.bandwidth.flatMap((b) => b.runsGBps)) : undefined;
  const derived: Partial<Record<Dtype, DerivedFigures>> = {};
  for (const dtype of ['bf16', 'fp32'] as Dtype[]) {
    const ours = inp.ours[dtype];
    const torch = inp.torch.figures[dtype];
    if (!ours && !torch) continue;
    const bytesPerParam = dtype === 'bf16' ? 2 : 4;
    const decodeBytes = inp.model.decodeParamsPerToken * bytesPerParam;
    const peak = dtype === 'bf16' ? bf.gflops : fp.gflops;
    // bf16: the engine computes from the mmapped file; fp32: it holds an fp32 copy of every weight.
    const weightsInMemory = dtype === 'bf16' ? inp.model.weightBytes : inp.model.parameters * 4;
    const budget = weightsInMemory * 1.1 + inp.model.kvBytesFp32;
    const d: DerivedFigures = {
      decode_bytes_per_token: decodeBytes,
      decode_roofline_ms: bwBest ? (decodeBytes / (bwBest * 1e9)) * 1000 : NaN,
      rss_budget_bytes: budget,
    };
    if (ours) {
      d.prefill_gflops = inp.model.prefillFlop / 1e9 / (ours.prefill_ms / 1000);
      if (peak) d.prefill_pct_of_gemm_peak = (100 * d.prefill_gflops) / peak;
      if (bwBest) d.decode_pct_of_roofline = (100 * d.decode_roofline_ms) / ours.decode_ms_per_token;
      d.rss_within_budget = ours.peak_rss_bytes <= budget;
      if (torch) {
        d.prefill_speedup_vs_torch = torch.prefill_ms / ours.prefill_ms;
        d.decode_speedup_vs_torch = torch.decode_ms_per_token / ours.decode_ms_per_token;
      }
    }
    derived[dtype] = d;
  }
  const b = derived.bf16;
  const check = (name: string, value: number | undefined, target: number, unit: string, higherIsBetter = true): TargetCheck => ({
    name, value, target, unit,
    pass: value === undefined || Number.isNaN(value) ? undefined : higherIsBetter ? value >= target : value <= target,
  });
  const targets: TargetCheck[] = [
    check('prefill speed vs transformers bf16', b?.prefill_speedup_vs_torch, 1.2, 'x'),
    check('prefill % of bf16 GEMM peak', b?.prefill_pct_of_gemm_peak, 85, '%'),
    check('decode speed vs transformers bf16', b?.decode_speedup_vs_torch, 1.6, 'x'),
    check('decode % of bandwidth roofline', b?.decode_pct_of_roofline, 80, '%'),
    check('peak RSS / (weights + 10% + KV)', inp.ours.bf16 && b ? inp.ours.bf16.peak_rss_bytes / b.rss_budget_bytes : undefined, 1, 'x', false),
  ];
  return {
    ...inp,
    peaks: { bf16_gflops: bf.gflops, bf16_source: bf.source, fp32_gflops: fp.gflops, fp32_source: fp.source, read_gbps_best: bwBest, read_gbps_source: bwSource, read_gbps_median: bwMedian },
    derived,
    targets,
  };
}

// ---- rendering --------------------------------------------------------------------------------------

const GB = 1e9;
const GiB = 1024 ** 3;
const f0 = (x?: number) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(0));
const f1 = (x?: number) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(1));
const f2 = (x?: number) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(2));
const gib = (x?: number) => (x === undefined ? '-' : `${(x / GiB).toFixed(2)} GiB`);
const pct = (x?: number) => (x === undefined || Number.isNaN(x) ? '-' : `${x.toFixed(0)}%`);
const times = (x?: number) => (x === undefined || Number.isNaN(x) ? '-' : `${x.toFixed(2)}x`);

function headerLines(r: BenchReport): string[] {
  const m = r.model;
  const lines = [
    `Model: Qwen2.5-VL-7B shape, ${m.llmLayers} LLM + ${m.vitLayers} ViT layers (full attention in block ${m.fullattBlocks.join(',')}), ` +
      `random bf16 weights: ${(m.parameters / 1e9).toFixed(2)}e9 params, ${(m.weightBytes / GB).toFixed(2)} GB`,
    `Input: ${m.image} image (grid ${m.imageGridThw ? m.imageGridThw.join('x') : '?'}), ${m.promptTokens} prompt tokens, ` +
      `${m.newTokens} decode steps, greedy, ${r.threads} threads`,
    `CPU: ${cpuLine(r.cpu)}`,
    ...(r.device ? [`Device: vreflect on ${r.device.ours ?? '-'}, transformers on ${r.device.torch ?? '-'} (CPU probes below are the host's)`] : []),
    `GEMM path: ${r.gemmPath ? `bf16 ${r.gemmPath.bf16}, fp32 ${r.gemmPath.fp32} (oneDNN ${r.gemmPath.onednn ? 'yes' : 'no'})` : 'addon not loaded'}`,
    `bf16 GEMM peak: ${f0(r.peaks.bf16_gflops)} GFLOP/s (${r.peaks.bf16_source ?? 'not measured'}); ` +
      `fp32: ${f0(r.peaks.fp32_gflops)} GFLOP/s (${r.peaks.fp32_source ?? 'not measured'})`,
    `Read bandwidth (${r.bandwidth[0]?.threads ?? r.threads} threads): best ${f1(r.peaks.read_gbps_best)} GB/s (${r.peaks.read_gbps_source ?? 'not measured'}), ` +
      `probe median ${f1(r.peaks.read_gbps_median)} GB/s over ${r.bandwidth.length} probe(s) around the runs` +
      (r.gemv ? `; our lm_head GEMV streams ${f1(r.gemv.weightGBps)} GB/s` : ''),
    `Rooflines: prefill ${(m.prefillFlop / 1e9).toFixed(0)} GFLOP -> ${r.peaks.bf16_gflops ? f0((m.prefillFlop / r.peaks.bf16_gflops / 1e9) * 1000) : '-'} ms at the bf16 peak; ` +
      `decode ${((m.decodeParamsPerToken * 2) / GB).toFixed(2)} GB/token (bf16) -> ${f1(r.derived.bf16?.decode_roofline_ms)} ms/token at the best bandwidth`,
  ];
  if (r.loadAverageAtStart > 0.5) lines.push(`Note: load average was ${r.loadAverageAtStart.toFixed(2)} at the start: other work shared the cores.`);
  const busy = Object.entries(r.otherLoad ?? {}).filter(([, v]) => v.cores + v.steal > 0.2);
  if (busy.length)
    lines.push(`Note: other work ran during ${busy.map(([k, v]) => `${k} (${f2(v.cores + v.steal)} cores)`).join(', ')}: those figures are low.`);
  return lines;
}

interface Row {
  label: string;
  f?: EngineFigures;
  err?: string;
}

function rows(r: BenchReport, dtype: Dtype): Row[] {
  const out: Row[] = [];
  if (r.ours[dtype] || r.oursError?.[dtype]) out.push({ label: `vreflect ${dtype}`, f: r.ours[dtype], err: r.oursError?.[dtype] });
  if (r.torch.figures[dtype] || r.torch.errors?.[dtype]) out.push({ label: `transformers ${dtype}`, f: r.torch.figures[dtype], err: r.torch.errors?.[dtype] });
  return out;
}

/** The human-readable report (stdout). */
export function renderText(r: BenchReport): string {
  const lines = ['vreflect bench infer', ...headerLines(r), ''];
  const head = ['', 'prefill ms', 'ViT ms', 'decode ms/tok', 'peak RSS', 'GFLOP/s: prefill', 'ViT', 'LLM', 'other load'];
  const table: string[][] = [head];
  for (const dtype of ['bf16', 'fp32'] as Dtype[]) {
    const d = r.derived[dtype];
    for (const row of rows(r, dtype)) {
      if (!row.f) {
        table.push([row.label, `failed: ${row.err ?? '?'}`]);
        continue;
      }
      const note = row.f.generated_ok ? '' : ' (stopped early)';
      const rate = (flop: number, ms: number) => f0(flop / 1e9 / (ms / 1000));
      table.push([row.label, f0(row.f.prefill_ms), f0(row.f.vision_ms), f1(row.f.decode_ms_per_token) + note, gib(row.f.peak_rss_bytes),
        rate(r.model.prefillFlop, row.f.prefill_ms), rate(r.model.vitFlop, row.f.vision_ms), rate(r.model.llmFlop, row.f.prefill_ms - row.f.vision_ms),
        row.f.foreign ? `${f2(row.f.foreign.cores + row.f.foreign.steal)} cores` : '-']);
    }
    if (d && (d.prefill_speedup_vs_torch !== undefined || d.prefill_pct_of_gemm_peak !== undefined)) {
      table.push([`  speed-up vs transformers`, times(d.prefill_speedup_vs_torch), '', times(d.decode_speedup_vs_torch), '', '']);
      table.push([`  % of roofline`, pct(d.prefill_pct_of_gemm_peak), '', pct(d.decode_pct_of_roofline), `budget ${gib(d.rss_budget_bytes)}`, '']);
    }
  }
  if (!r.torch.available) table.push(['PyTorch: not available', r.torch.reason ?? '']);
  const widths = head.map((_, c) => Math.max(...table.map((row) => (row[c] ?? '').length)));
  for (const row of table) lines.push(row.map((cell, c) => (c === 0 ? (cell ?? '').padEnd(widths[c]) : (cell ?? '').padStart(widths[c]))).join('  ').trimEnd());
  lines.push('', 'Targets (bf16):');
  for (const t of r.targets) {
    const v = t.value === undefined || Number.isNaN(t.value) ? 'not measured' : `${t.unit === '%' ? t.value.toFixed(0) : t.value.toFixed(2)}${t.unit}`;
    const mark = t.pass === undefined ? '' : t.pass ? 'PASS' : 'MISS';
    lines.push(`  ${t.name.padEnd(36)} ${v.padStart(12)}  (target ${t.name.startsWith('peak RSS') ? '<=' : '>='} ${t.target}${t.unit})  ${mark}`);
  }
  return lines.join('\n') + '\n';
}

/** A README snippet: the figures with CPU and date. */
export function renderMarkdown(r: BenchReport): string {
  const m = r.model;
  const out: string[] = [];
  out.push(`### Inference benchmark (${r.date.slice(0, 10)})`, '');
  out.push(
    `\`vreflect bench infer\` on a Qwen2.5-VL-7B-shaped model with ${m.llmLayers} LLM + ${m.vitLayers} ViT layers ` +
      `(real widths, random bf16 weights, ${(m.weightBytes / GB).toFixed(2)} GB), one ${m.image} image + question ` +
      `= ${m.promptTokens} prompt tokens, ${m.newTokens} greedy decode steps, ${r.threads} threads.`,
    '',
    `- CPU: ${cpuLine(r.cpu)}`,
    ...(r.device ? [`- Device: vreflect on ${r.device.ours ?? '-'}, transformers on ${r.device.torch ?? '-'}`] : []),
    `- GEMM path: ${r.gemmPath ? `bf16 \`${r.gemmPath.bf16}\`, fp32 \`${r.gemmPath.fp32}\`` : '-'}`,
    `- Measured bf16 GEMM peak ${f0(r.peaks.bf16_gflops)} GFLOP/s (${r.peaks.bf16_source ?? '-'}); ` +
      `read bandwidth best ${f1(r.peaks.read_gbps_best)} GB/s (${r.peaks.read_gbps_source ?? '-'}), probe median ${f1(r.peaks.read_gbps_median)} GB/s`,
    `- Medians of ${r.ours.bf16?.runs.length ?? r.torch.figures.bf16?.runs.length ?? '?'} timed runs per row; other work on the machine ` +
      `meanwhile: at most ${f2(Math.max(0, ...Object.values(r.otherLoad ?? {}).map((v) => v.cores + v.steal)))} cores`,
    `- Versions: ${r.torch.available ? `torch ${r.torch.torch}, transformers ${r.torch.transformers} (sdpa)` : `PyTorch not available (${r.torch.reason ?? ''})`}`,
    '',
    '| engine | prefill ms | ViT ms | decode ms/token | peak RSS | prefill % of GEMM peak | decode % of bandwidth roofline |',
    '|---|---:|---:|---:|---:|---:|---:|',
  );
  for (const dtype of ['bf16', 'fp32'] as Dtype[]) {
    const d = r.derived[dtype];
    for (const row of rows(r, dtype)) {
      if (!row.f) {
        out.push(`| ${row.label} | failed: ${row.err ?? '?'} | | | | | |`);
        continue;
      }
      const gflops = r.model.prefillFlop / 1e9 / (row.f.prefill_ms / 1000);
      const peak = dtype === 'bf16' ? r.peaks.bf16_gflops : r.peaks.fp32_gflops;
      const roof = d ? (100 * d.decode_roofline_ms) / row.f.decode_ms_per_token : undefined;
      out.push(`| ${row.label} | ${f0(row.f.prefill_ms)} | ${f0(row.f.vision_ms)} | ${f1(row.f.decode_ms_per_token)} | ${gib(row.f.peak_rss_bytes)} | ` +
        `${peak ? pct((100 * gflops) / peak) : '-'} | ${pct(roof)} |`);
    }
    if (d?.prefill_speedup_vs_torch !== undefined)
      out.push(`| speed-up ${dtype} (transformers / vreflect) | ${times(d.prefill_speedup_vs_torch)} | | ${times(d.decode_speedup_vs_torch)} | | | |`);
  }
  out.push('', 'Targets (bf16): ' + r.targets.map((t) => `${t.name} ${t.pass === undefined ? 'not measured' : t.pass ? 'met' : 'missed'}`).join('; ') + '.', '');
  return out.join('\n');
}
