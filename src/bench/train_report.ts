// `vreflect bench train` figures: per engine the medians of the timed optimizer steps (N accumulated micro-batches +
// one AdamW update each), tokens/s, peak RSS, and the share of the measured bf16 GEMM peak the whole step reaches
// (model FLOPs: MFU; with each engine's recompute: HFU), the speed-up over PyTorch eager, and the issue's targets;
// rendered as a text table, JSON and a README snippet.
import type { CpuDescription } from './machine';
import { cpuLine } from './machine';
import type { GemmProbe } from './native_probes';
import { median, TargetCheck } from './report';
import type { TorchGemmResult } from './torch_side';
import type { TrainBatchSpec } from './train_batch';
import type { TrainStepCost } from './train_flops';
import type { TrainBenchShape, TrainParamCounts } from './train_model';
import type { StepTiming } from './train_worker';

export type EngineKind = 'vreflect' | 'torch' | 'torch-ckpt';

export const ENGINE_LABELS: Record<EngineKind, string> = {
  vreflect: 'vreflect bf16',
  torch: 'PyTorch eager bf16 autocast',
  'torch-ckpt': 'PyTorch eager bf16 autocast + grad ckpt',
};

export interface TrainRun {
  kind: EngineKind;
  steps: StepTiming[];
  peak_rss_bytes: number;
  setup_ms: number;
  /** Other work during this measurement: cores busy besides the measuring process, and hypervisor steal. */
  foreign?: { cores: number; steal: number };
  losses_first?: { loss: number; loss_ce: number; loss_align: number };
  /** vreflect: whether the step recomputed each layer (gradient checkpointing); default true */
  checkpointing?: boolean;
  /** --device cuda: the device memory the run held at its peak (vreflect: total - free sampled after each call;
   * torch: torch.cuda.max_memory_allocated) */
  peak_device_bytes?: number;
}

export interface TrainBenchInputs {
  date: string;
  cpu: CpuDescription;
  threads: number;
  loadAverageAtStart: number;
  /** forward+backward passes (micro-batches) per optimizer step */
  gradient_accumulation_steps: number;
  gemmPath?: { bf16: string; fp32: string; onednn: boolean };
  model: { dir: string; shape: TrainBenchShape; parameters: number; weightBytes: number; counts: TrainParamCounts };
  /** ONE micro-batch (a step runs it gradient_accumulation_steps times) */
  batch: { spec: TrainBatchSpec; tokens: number; targets: number; visualTokens: number; patches: number; boxTokens: number[] };
  /** FLOPs of a whole optimizer step: all its micro-batches (cost.microBatches = gradient_accumulation_steps) */
  cost: TrainStepCost;
  gemmOurs: GemmProbe[];
  gemmTorch?: TorchGemmResult;
  otherLoad?: Record<string, { cores: number; steal: number }>;
  runs: TrainRun[];
  errors: { kind: EngineKind; error: string }[];
  torch: { available: boolean; reason?: string; torch?: string; transformers?: string; adamw?: string };
  /** --device cuda: the GPU each engine ran on */
  device?: { ours?: string; torch?: string };
  /** --device cuda: the GPU's bf16 peak MFU is taken against (datasheet; the CPU GEMM probes are not used) */
  gpuPeak?: { bf16_gflops: number; source: string };
}

export interface TrainRowFigures {
  kind: EngineKind;
  label: string;
  step_ms: number;
  /** all micro-batches of the step */
  fwd_bwd_ms: number;
  /** fwd_bwd_ms / gradient_accumulation_steps: compares across accumulation settings */
  micro_batch_ms: number;
  optimizer_ms: number;
  /** gradient_accumulation_steps x micro-batch tokens per step time */
  tokens_per_s: number;
  peak_rss_bytes: number;
  peak_device_bytes?: number;
  /** model FLOPs per second over the whole step, and as % of the bf16 GEMM peak */
  model_gflops: number;
  mfu_pct?: number;
  /** the same counting this engine's recompute */
  hardware_gflops: number;
  hfu_pct?: number;
  /** share of the step's CPU time spent in the kernel (page faults of fresh allocations, mostly) */
  kernel_cpu_pct: number;
  /** CPU seconds per wall second during the steps: how many of the threads were busy on average */
  cores_busy: number;
  /** how much faster vreflect's step is: on its own row vs the fastest PyTorch row, on a PyTorch row vs that row */
  speedup_vs_torch?: number;
}

export interface TrainBenchReport extends TrainBenchInputs {
  peak: { bf16_gflops?: number; source?: string };
  rows: TrainRowFigures[];
  targets: TargetCheck[];
}

/** The best bf16 GFLOP/s of every probe (ours through the op layer, torch.matmul). */
export function bf16Peak(ours: GemmProbe[], torch?: TorchGemmResult): { bf16_gflops?: number; source?: string } {
  let best: { bf16_gflops?: number; source?: string } = {};
  for (const g of ours.filter((x) => x.dtype === 'bf16'))
    if (!best.bf16_gflops || g.gflops > best.bf16_gflops) best = { bf16_gflops: g.gflops, source: `vreflect linear ${g.m}x${g.n}x${g.k} (${g.backend})` };
  for (const g of torch?.results.filter((x) => x.dtype === 'bf16') ?? [])
    if (!best.bf16_gflops || g.gflops > best.bf16_gflops) best = { bf16_gflops: g.gflops, source: `torch.matmul ${g.m}x${g.n}x${g.k}` };
  return best;
}

/** FLOPs an engine recomputes on top of the model FLOPs. */
export function recomputeFlop(kind: EngineKind, c: TrainStepCost, checkpointing = true): number {
  if (kind === 'vreflect') return checkpointing ? c.oursRecomputeFlop : c.oursKeptRecomputeFlop;
  return kind === 'torch-ckpt' ? c.torchCheckpointRecomputeFlop : 0;
}

export function buildTrainReport(inp: TrainBenchInputs): TrainBenchReport {
  const ga = inp.gradient_accumulation_steps;
  if (inp.cost.microBatches !== ga) throw new Error(`bench train report: the FLOP count covers ${inp.cost.microBatches} micro-batches, the step ${ga}`);
  const peak = inp.device ? inp.gpuPeak ?? {} : bf16Peak(inp.gemmOurs, inp.gemmTorch);
  const rows: TrainRowFigures[] = inp.runs.map((r) => {
    const step = median(r.steps.map((s) => s.step_ms));
    const fwdBwd = median(r.steps.map((s) => s.fwd_bwd_ms));
    const cpu = r.steps.reduce((a, s) => a + s.user_s + s.sys_s, 0);
    const sys = r.steps.reduce((a, s) => a + s.sys_s, 0);
    const modelGflops = inp.cost.modelFlop / 1e9 / (step / 1000);
    const hwGflops = (inp.cost.modelFlop + recomputeFlop(r.kind, inp.cost, r.checkpointing)) / 1e9 / (step / 1000);
    return {
      kind: r.kind,
      label: ENGINE_LABELS[r.kind] + (r.kind === 'vreflect' && r.checkpointing !== undefined ? (r.checkpointing ? ' + grad ckpt' : ', no recompute') : ''),
      step_ms: step,
      fwd_bwd_ms: fwdBwd,
      micro_batch_ms: fwdBwd / ga,
      optimizer_ms: median(r.steps.map((s) => s.optimizer_ms)),
      tokens_per_s: (ga * inp.batch.tokens) / (step / 1000),
      peak_rss_bytes: r.peak_rss_bytes,
      ...(r.peak_device_bytes !== undefined ? { peak_device_bytes: r.peak_device_bytes } : {}),
      model_gflops: modelGflops,
      mfu_pct: peak.bf16_gflops ? (100 * modelGflops) / peak.bf16_gflops : undefined,
      hardware_gflops: hwGflops,
      hfu_pct: peak.bf16_gflops ? (100 * hwGflops) / peak.bf16_gflops : undefined,
      kernel_cpu_pct: cpu > 0 ? (100 * sys) / cpu : 0,
      cores_busy: cpu / (r.steps.reduce((a, s) => a + s.step_ms, 0) / 1000),
    };
  });
  // PyTorch's best eager step (with or without checkpointing) is the yardstick.
  const torchRows = rows.filter((r) => r.kind !== 'vreflect');
  const bestTorch = torchRows.length ? Math.min(...torchRows.map((r) => r.step_ms)) : undefined;
  const ours = rows.find((r) => r.kind === 'vreflect');
  if (ours && bestTorch !== undefined) ours.speedup_vs_torch = bestTorch / ours.step_ms;
  for (const r of torchRows) if (ours) r.speedup_vs_torch = r.step_ms / ours.step_ms;
  const check = (name: string, value: number | undefined, target: number, unit: string): TargetCheck => ({
    name, value, target, unit, pass: value === undefined || Number.isNaN(value) ? undefined : value >= target,
  });
  // Issue 5's CPU targets; on the GPU issue 6's: at least 40% MFU on one H100.
  const targets = inp.device
    ? [check('whole step MFU (% of the GPU bf16 peak)', ours?.mfu_pct, 40, '%')]
    : [
        check('step speed vs fastest PyTorch eager', ours?.speedup_vs_torch, 1.2, 'x'),
        check('whole step MFU (% of bf16 GEMM peak)', ours?.mfu_pct, 70, '%'),
      ];
  return { ...inp, peak, rows, targets };
}

// ---- rendering --------------------------------------------------------------------------------------

const GiB = 1024 ** 3;
const f0 = (x?: number) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(0));
const f2 = (x?: number) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(2));
const gib = (x?: number) => (x === undefined ? '-' : `${(x / GiB).toFixed(2)} GiB`);
const pct = (x?: number) => (x === undefined || Number.isNaN(x) ? '-' : `${x.toFixed(0)}%`);
const times = (x?: number) => (x === undefined || Number.isNaN(x) ? '-' : `${x.toFixed(2)}x`);
const tf = (flop: number) => (flop / 1e12).toFixed(2);
const e9 = (n: number) => `${(n / 1e9).toFixed(3)}e9`;

const microBatches = (n: number) => `${n} micro-batch${n === 1 ? '' : 'es'}`;

/** What was measured, in words (shared by the text report and the markdown snippet). */
export function describeSetup(r: TrainBenchReport): string[] {
  const s = r.model.shape, c = r.model.counts, b = r.batch, k = r.cost, ga = r.gradient_accumulation_steps;
  // Our recompute is the layers + lm_head with gradient checkpointing, the lm_head alone without (the run says which).
  const oursCkpt = r.runs.find((x) => x.kind === 'vreflect')?.checkpointing ?? true;
  return [
    `Model: Qwen2.5-VL-7B layer widths, ${s.llmLayers} LLM + ${s.vitLayers} ViT layers, vocabulary cut to ${s.vocab} rows ` +
      `(special tokens remapped into it), random bf16 weights: ${e9(c.trainable)} trainable parameters ` +
      `(${e9(c.layerGemm)} in decoder-layer GEMMs, 2 x ${e9(c.embedding)} embed_tokens / lm_head, ${e9(c.bcm)} BCM), ${e9(c.frozen)} frozen (ViT + merger)`,
    `Step: stage 1, ${microBatches(ga)} of ${b.spec.samples} x ${b.spec.tokensPerSample} tokens ` +
      `(${b.spec.imageSize}x${b.spec.imageSize} image = ${b.visualTokens / b.spec.samples} image tokens per sample, ` +
      `${b.boxTokens.length} box(es) of ${b.boxTokens.join('/')} tokens, ${b.spec.latentCount} latents per box, ${b.targets} CE targets) ` +
      `+ one AdamW update: forward + backward per micro-batch${ga > 1 ? ' (the same one each time, gradients accumulated)' : ''}, ` +
      `then clip + AdamW${ga === 8 ? " (upstream's recipe: 8 accumulation steps)" : ''}, ${r.threads} threads`,
    `FLOPs per step (${microBatches(ga)}): model ${tf(k.modelFlop)} TFLOP = 3 x forward of decoder GEMMs ${tf(6 * k.layerDenseMac)}, attention ${tf(6 * k.layerAttnMac)}, ` +
      `lm_head ${tf(6 * k.lmHeadMac)}, BCM ${tf(6 * k.bcmMac)} + frozen ViT forward ${tf(2 * k.vitMac)}; recompute on top: ` +
      `vreflect ${tf(recomputeFlop('vreflect', k, oursCkpt))} (${oursCkpt ? 'layers + lm_head' : 'lm_head'}), PyTorch grad ckpt ${tf(k.torchCheckpointRecomputeFlop)} (layers)`,
  ];
}

function headerLines(r: TrainBenchReport): string[] {
  const lines = [
    ...describeSetup(r),
    ...(r.device ? [`Device: vreflect on ${r.device.ours ?? '-'}, PyTorch on ${r.device.torch ?? '-'}; "peak device" = GPU memory held (vreflect: total - free after each call; PyTorch: max_memory_allocated)`] : []),
    `CPU: ${cpuLine(r.cpu)}`,
    `GEMM path: ${r.device ? 'the GPU trainer (cuBLASLt when loaded, else our kernel)' : r.gemmPath ? `bf16 ${r.gemmPath.bf16}, fp32 ${r.gemmPath.fp32}` : 'addon not loaded'}`,
    `bf16 ${r.device ? 'GPU' : 'GEMM'} peak: ${f0(r.peak.bf16_gflops)} GFLOP/s (${r.peak.source ?? (r.device ? 'unknown GPU: no MFU' : 'not measured')})`,
    `PyTorch: ${r.torch.available ? `torch ${r.torch.torch}, transformers ${r.torch.transformers}, sdpa, fp32 master weights + bf16 autocast, AdamW ${r.torch.adamw ?? 'fused'}` : `not available (${r.torch.reason ?? ''})`}`,
  ];
  // With idle waits each phase records its own other-load figures; the start's load average only matters without.
  if (r.loadAverageAtStart > 0.5 && !Object.keys(r.otherLoad ?? {}).length)
    lines.push(`Note: load average was ${r.loadAverageAtStart.toFixed(2)} at the start: other work shared the cores.`);
  const busy = Object.entries(r.otherLoad ?? {}).filter(([, v]) => v.cores + v.steal > 0.2);
  if (busy.length) lines.push(`Note: other work ran during ${busy.map(([k, v]) => `${k} (${f2(v.cores + v.steal)} cores)`).join(', ')}: those figures are low.`);
  return lines;
}

export function renderTrainText(r: TrainBenchReport): string {
  const lines = ['vreflect bench train', ...headerLines(r), ''];
  const dev = !!r.device;
  const head = ['', 'step ms', 'fwd+bwd ms', 'per micro-batch ms', 'AdamW ms', 'tokens/s', 'peak RSS', ...(dev ? ['peak device'] : []), 'MFU', 'with recompute', 'cores busy', 'kernel CPU', 'vreflect speed-up'];
  const table: string[][] = [head];
  for (const row of r.rows) {
    const run = r.runs.find((x) => x.kind === row.kind);
    table.push([row.label, f0(row.step_ms), f0(row.fwd_bwd_ms), f0(row.micro_batch_ms), f0(row.optimizer_ms), f0(row.tokens_per_s), gib(row.peak_rss_bytes),
      ...(dev ? [gib(row.peak_device_bytes)] : []), pct(row.mfu_pct), pct(row.hfu_pct), f2(row.cores_busy), pct(row.kernel_cpu_pct),
      row.kind === 'vreflect' ? `${times(row.speedup_vs_torch)} (vs fastest)` : times(row.speedup_vs_torch)]);
    if (run?.foreign && run.foreign.cores + run.foreign.steal > 0.2) table[table.length - 1][0] += ` (other load ${f2(run.foreign.cores + run.foreign.steal)} cores)`;
  }
  for (const e of r.errors) table.push([ENGINE_LABELS[e.kind], `failed: ${e.error}`]);
  const widths = head.map((_, c) => Math.max(...table.map((row) => (row[c] ?? '').length)));
  for (const row of table) lines.push(row.map((cell, c) => (c === 0 ? (cell ?? '').padEnd(widths[c]) : (cell ?? '').padStart(widths[c]))).join('  ').trimEnd());
  lines.push('', dev ? 'Targets (issue 6, GPU):' : 'Targets (issue #5, CPU):');
  for (const t of r.targets) {
    const v = t.value === undefined || Number.isNaN(t.value) ? 'not measured' : `${t.unit === '%' ? t.value.toFixed(0) : t.value.toFixed(2)}${t.unit}`;
    lines.push(`  ${t.name.padEnd(40)} ${v.padStart(12)}  (target >= ${t.target}${t.unit})  ${t.pass === undefined ? '' : t.pass ? 'PASS' : 'MISS'}`);
  }
  return lines.join('\n') + '\n';
}

export function renderTrainMarkdown(r: TrainBenchReport): string {
  const out: string[] = [`### Training benchmark (${r.date.slice(0, 10)})`, ''];
  out.push(`\`vreflect bench train\`: ${describeSetup(r).map((l) => l.replace(/^(\w[\w ]*): /, '**$1**: ')).join('; ')}.`, '');
  const dev = !!r.device;
  out.push(
    ...(dev ? [`- Device: vreflect on ${r.device!.ours ?? '-'}, PyTorch on ${r.device!.torch ?? '-'}; "peak device" = GPU memory held (vreflect: total - free sampled after each call; PyTorch: max_memory_allocated)`] : []),
    `- CPU: ${cpuLine(r.cpu)}; GEMM path: ${dev ? 'GPU trainer' : r.gemmPath ? `bf16 \`${r.gemmPath.bf16}\`` : '-'}`,
    `- ${dev ? 'GPU' : 'Measured'} bf16 ${dev ? '' : 'GEMM '}peak ${f0(r.peak.bf16_gflops)} GFLOP/s (${r.peak.source ?? '-'}); MFU = model FLOPs / step time / that peak, ` +
      `"with recompute" adds the FLOPs each engine recomputes; "cores busy" = CPU seconds per wall second during the steps`,
    `- ${r.torch.available ? `PyTorch: torch ${r.torch.torch}, transformers ${r.torch.transformers}, eager, sdpa, fp32 master weights + bf16 autocast, frozen ViT in bf16 under no_grad, AdamW ${r.torch.adamw ?? 'fused'}` : `PyTorch not available (${r.torch.reason ?? ''})`}`,
    `- Medians of ${r.runs[0]?.steps.length ?? '?'} timed steps (${microBatches(r.gradient_accumulation_steps)} + one AdamW update each) after warm-up; ` +
      `"per micro-batch" = fwd+bwd / ${r.gradient_accumulation_steps}; other work meanwhile: at most ` +
      `${f2(Math.max(0, ...Object.values(r.otherLoad ?? {}).map((v) => v.cores + v.steal)))} cores`,
    '',
    `| engine | step ms | fwd+bwd ms | per micro-batch ms | AdamW ms | tokens/s | peak RSS |${dev ? ' peak device |' : ''} MFU | with recompute | cores busy |`,
    `|---|---:|---:|---:|---:|---:|---:|${dev ? '---:|' : ''}---:|---:|---:|`,
  );
  for (const row of r.rows)
    out.push(`| ${row.label} | ${f0(row.step_ms)} | ${f0(row.fwd_bwd_ms)} | ${f0(row.micro_batch_ms)} | ${f0(row.optimizer_ms)} | ${f0(row.tokens_per_s)} | ${gib(row.peak_rss_bytes)} |${dev ? ` ${gib(row.peak_device_bytes)} |` : ''} ${pct(row.mfu_pct)} | ${pct(row.hfu_pct)} | ${f2(row.cores_busy)} of ${r.threads} |`);
  for (const e of r.errors) out.push(`| ${ENGINE_LABELS[e.kind]} | failed: ${e.error} | | | | | | | | |`);
  out.push('', 'Targets: ' + r.targets.map((t) => `${t.name} ${t.value === undefined ? 'not measured' : `${t.unit === '%' ? t.value.toFixed(0) : t.value.toFixed(2)}${t.unit}`} (>= ${t.target}${t.unit}): ${t.pass === undefined ? 'not measured' : t.pass ? 'met' : 'missed'}`).join('; ') + '.', '');
  return out.join('\n');
}
