// `vreflect bench infer` end to end: checkpoint, machine probes, our engine and transformers per dtype (each in
// its own process, interleaved so slow drifts of a shared VM hit both sides alike), probes again, report.
import * as fs from 'fs';
import * as path from 'path';

import { oneLine } from '../util/errors';
import { ensureBenchImage, BENCH_QUESTION } from './bench_image';
import { CheckpointInfo, defaultCheckpointDir, ensureCheckpoint } from './checkpoint';
import { runJsonChild } from './child';
import { loadAverage, makePhaseRunner, thisCpu } from './machine';
import { benchShape, decodeParamsPerToken, kvCacheBytes, prefillCost } from './model_shape';
import { BandwidthProbe, GemmProbe, hasNativeProbes, probeBandwidth, probeGemm, probeGemv, loadProbeAddon } from './native_probes';
import { OursRequest, OursResult, oursWorkerScript } from './ours_worker';
import { BenchInputs, BenchReport, buildReport, Dtype, EngineFigures, summarizeRuns } from './report';
import { findTorchPython, PythonInfo, runTorchGemm, runTorchInfer, TorchGemmResult } from './torch_side';

export interface InferBenchOptions {
  modelDir?: string;
  llmLayers: number;
  vitLayers: number;
  regenerate: boolean;
  dtypes: Dtype[];
  newTokens: number;
  repeats: number;
  warmup: number;
  threads: number;
  torch: 'auto' | 'on' | 'off';
  python?: string;
  ours: boolean;
  probes: boolean;
  /** Before each measurement, wait up to this many seconds for the machine to be idle (0: do not wait). */
  waitIdleS: number;
  /** Side of the square benchmark image in pixels (multiple of 28; 448 gives the 305-token prompt). */
  imageSize: number;
  /** resolved --device: cuda times our CUDA session, and torch on the GPU when it has CUDA (default cpu) */
  device?: 'cpu' | 'cuda';
}

export interface BenchHooks {
  say: (line: string) => void; // progress lines (stderr)
  debug?: (line: string) => void; // everything else the children print
  onCheckpointProgress?: (done: number, total: number) => void;
}

export async function runInferBench(opts: InferBenchOptions, hooks: BenchHooks): Promise<BenchReport> {
  const load0 = loadAverage();
  if (load0 > 0.5) hooks.say(`load average ${load0.toFixed(2)}: other work is running, figures may come out low`);
  const shape = benchShape(opts.llmLayers, opts.vitLayers);
  const dir = path.resolve(opts.modelDir ?? defaultCheckpointDir(shape));

  const ckpt: CheckpointInfo = ensureCheckpoint({ dir, shape, force: opts.regenerate, onProgress: hooks.onCheckpointProgress });
  hooks.say(ckpt.generated ? `checkpoint written to ${dir} in ${ckpt.seconds.toFixed(0)} s` : `checkpoint re-used: ${dir}`);
  const image = await ensureBenchImage(dir, opts.imageSize);

  const { addon, info } = loadProbeAddon(opts.threads, opts.ours, hooks.say);

  let py: PythonInfo = { available: false, python: '', reason: 'disabled (--torch off)' };
  if (opts.torch !== 'off') {
    py = findTorchPython(opts.python);
    if (!py.available && opts.torch === 'on') throw new Error(`--torch on: ${py.reason}`);
    hooks.say(py.available ? `PyTorch: ${py.python} (torch ${py.torch}, transformers ${py.transformers})` : `PyTorch: not available (${py.reason})`);
  }

  const otherLoad: Record<string, { cores: number; steal: number }> = {};
  const phase = makePhaseRunner(opts.waitIdleS, hooks.say, otherLoad);

  const bandwidth: BandwidthProbe[] = [];
  const gemmOurs: GemmProbe[] = [];
  let gemmTorch: TorchGemmResult | undefined;
  let gemv: BenchInputs['gemv'];
  const probesOk = opts.probes && addon !== undefined && hasNativeProbes(addon);
  if (opts.probes && addon && !probesOk) hooks.say('this addon build has no bench probes (benchGemm/benchReadBandwidth): GEMM peak from torch only, no bandwidth');
  if (probesOk) {
    hooks.say('probing read bandwidth and GEMM throughput ...');
    bandwidth.push(await phase('read probe 1', () => probeBandwidth(addon!, opts.threads)));
    for (const dt of ['bf16', 'fp32'] as Dtype[]) gemmOurs.push(...(await phase(`gemm probe ${dt}`, () => probeGemm(addon!, dt))));
    gemv = await phase('gemv probe', () => probeGemv(addon!));
  }
  if (opts.probes && py.available) {
    try {
      gemmTorch = await phase('torch gemm probe', () => runTorchGemm(py, opts.threads), (r) => r.cpu_s ?? 0);
    } catch (e) {
      hooks.say(`torch GEMM probe failed: ${oneLine(e)}`);
    }
  }

  const ours: Partial<Record<Dtype, EngineFigures>> = {};
  const oursError: Partial<Record<Dtype, string>> = {};
  const torchFigures: Partial<Record<Dtype, EngineFigures>> = {};
  const torchErrors: Partial<Record<Dtype, string>> = {};
  let promptTokens = 0;
  let grid: number[] | undefined;
  let oursDevice: string | undefined, torchDevice: string | undefined;
  // The children's own progress lines ("ours bf16: repeat 1/3 ...") are shown; their other output (library
  // warnings, loading bars) only at debug level.
  const childLine = (l: string) => (/^(ours|torch) (bf16|fp32):/.test(l) ? hooks.say(l) : hooks.debug?.(l));
  const common = { model: dir, image, prompt: BENCH_QUESTION, threads: opts.threads, newTokens: opts.newTokens, repeats: opts.repeats, warmup: opts.warmup, device: opts.device ?? 'cpu' };
  for (const dtype of opts.dtypes) {
    if (opts.ours) {
      try {
        const r = await phase(`vreflect ${dtype}`, () => runOursChild({ ...common, dtype }, childLine), (x) => x.cpu_s ?? 0);
        ours[dtype] = summarizeRuns(r.runs, { peak_rss_bytes: r.peak_rss_bytes, rss_after_load_bytes: r.rss_after_load_bytes, load_ms: r.load_ms, prompt_tokens: r.prompt_tokens }, opts.newTokens + 1);
        ours[dtype]!.foreign = otherLoad[`vreflect ${dtype}`];
        promptTokens = r.prompt_tokens;
        grid = r.image_grid_thw ?? grid;
        oursDevice = r.device;
      } catch (e) {
        oursError[dtype] = oneLine(e);
        hooks.say(`vreflect ${dtype} failed: ${oneLine(e)}`);
      }
    }
    if (py.available) {
      try {
        const r = await phase(`transformers ${dtype}`, () => runTorchInfer(py, { ...common, dtype }, childLine), (x) => x.cpu_s ?? 0);
        torchFigures[dtype] = summarizeRuns(r.runs, { peak_rss_bytes: r.peak_rss_bytes, rss_after_load_bytes: r.rss_after_load_bytes, load_ms: r.load_s * 1000, prompt_tokens: r.prompt_tokens }, opts.newTokens + 1);
        torchFigures[dtype]!.foreign = otherLoad[`transformers ${dtype}`];
        if (promptTokens && r.prompt_tokens !== promptTokens) hooks.say(`warning: prompt length differs: vreflect ${promptTokens}, transformers ${r.prompt_tokens}`);
        promptTokens = promptTokens || r.prompt_tokens;
        torchDevice = r.device;
        grid = grid ?? r.image_grid_thw;
      } catch (e) {
        torchErrors[dtype] = oneLine(e);
        hooks.say(`transformers ${dtype} failed: ${oneLine(e)}`);
      }
    }
    // Bandwidth again after each dtype: on shared VMs it drifts by 2x within minutes.
    if (probesOk) bandwidth.push(await phase(`read probe ${bandwidth.length + 1}`, () => probeBandwidth(addon!, opts.threads)));
  }

  const g = grid ?? [1, opts.imageSize / 14, opts.imageSize / 14];
  const cost = prefillCost(shape, { t: g[0], h: g[1], w: g[2] }, promptTokens);
  const inputs: BenchInputs = {
    date: new Date().toISOString(),
    cpu: thisCpu(),
    device: opts.device === 'cuda' ? { ours: oursDevice, torch: torchDevice } : undefined,
    threads: opts.threads,
    loadAverageAtStart: load0,
    gemmPath: info ? { bf16: info.cpu.gemm_bf16, fp32: info.cpu.gemm_f32, onednn: info.onednn } : undefined,
    model: {
      dir,
      llmLayers: shape.llmLayers,
      vitLayers: shape.vitLayers,
      fullattBlocks: shape.fullattBlocks,
      parameters: ckpt.parameters,
      weightBytes: ckpt.weightBytes,
      image: `${opts.imageSize}x${opts.imageSize}`,
      imageGridThw: grid,
      promptTokens,
      newTokens: opts.newTokens,
      prefillFlop: cost.totalFlop,
      vitFlop: 2 * (cost.vitDenseMac + cost.vitAttnMac + cost.mergerMac),
      llmFlop: 2 * (cost.llmDenseMac + cost.llmAttnMac + cost.lmHeadMac),
      decodeParamsPerToken: decodeParamsPerToken(shape),
      kvBytesFp32: kvCacheBytes(shape, promptTokens + opts.newTokens + 1, 4),
    },
    gemmOurs,
    gemmTorch,
    gemv,
    otherLoad,
    bandwidth,
    ours,
    oursError,
    torch: { available: py.available, reason: py.reason, torch: py.torch, transformers: py.transformers, figures: torchFigures, errors: torchErrors },
  };
  return buildReport(inputs);
}

/** Our engine in a child process (compiled worker script; needs `tsc` output, as bin/vreflect.js does). */
async function runOursChild(req: OursRequest, say: (l: string) => void): Promise<OursResult> {
  const script = oursWorkerScript();
  if (!fs.existsSync(script)) throw new Error(`bench: ${script} not found (build the TypeScript first: npm run build:ts)`);
  const r = await runJsonChild(process.execPath, [script, JSON.stringify(req)], { label: `vreflect ${req.dtype}`, timeoutMs: 3_600_000, onStderrLine: say });
  return r as OursResult;
}
