// `vreflect bench train` end to end: checkpoint, the synthetic micro-batch (ours builds it in its worker, PyTorch
// reads it from a file; a timed step accumulates gradients over N passes of it, then updates), bf16 GEMM peak probes, one process per engine (ours, PyTorch eager, PyTorch eager with
// gradient checkpointing), then the report. --device cuda: our GPU trainer and PyTorch on cuda, MFU against the GPU's
// datasheet bf16 peak (gpu_peak.ts; the host's GEMM probes are skipped). Each measurement waits for an idle machine first and records how much
// other work ran meanwhile.
import * as fs from 'fs';
import * as path from 'path';

import { oneLine } from '../util/errors';
import { runJsonChild } from './child';
import { loadAverage, makePhaseRunner, thisCpu } from './machine';
import { GemmProbe, hasNativeProbes, probeGemm, loadProbeAddon } from './native_probes';
import { findTorchPython, PythonInfo, runTorchGemm, TorchGemmResult } from './torch_side';
import { batchIds, buildTrainBatch, TrainBatchSpec, writeTorchBatch } from './train_batch';
import { defaultTrainCheckpointDir, ensureTrainCheckpoint } from './train_checkpoint';
import { accumulatedStepCost, trainStepCost } from './train_flops';
import { TrainBenchShape, trainParamCounts } from './train_model';
import { buildTrainReport, EngineKind, TrainBenchInputs, TrainBenchReport, TrainRun } from './train_report';
import { gpuBf16Peak } from './gpu_peak';
import { runTorchTrain } from './train_torch';
import type { CheckpointingMode } from '../train/memory_plan';
import { TrainWorkerRequest, TrainWorkerResult, trainWorkerScript } from './train_worker';

export interface TrainBenchOptions {
  modelDir?: string;
  shape: TrainBenchShape;
  regenerate: boolean;
  batch: Omit<TrainBatchSpec, 'vocab'>;
  /** optimizer steps timed and warm-up steps (whole steps: N micro-batches + one update each) */
  steps: number;
  warmup: number;
  /** forward+backward passes per optimizer step (upstream's recipe: 8) */
  gradientAccumulationSteps: number;
  threads: number;
  torch: 'auto' | 'on' | 'off';
  /** PyTorch variants to run: plain eager, and eager with gradient checkpointing */
  torchModes: ('plain' | 'checkpointing')[];
  python?: string;
  ours: boolean;
  probes: boolean;
  waitIdleS: number;
  lr: number;
  maxGradNorm: number;
  /** our trainer's --gradient-checkpointing (default auto) */
  checkpointing?: CheckpointingMode;
  /** resolved --device (default cpu) */
  device?: 'cpu' | 'cuda';
  /** cuda: where our AdamW state lives (the pre-flight plan's choice; default gpu) */
  optimizerStates?: 'gpu' | 'host';
}

export interface TrainBenchHooks {
  say: (line: string) => void;
  debug?: (line: string) => void;
  onCheckpointProgress?: (done: number, total: number) => void;
}

/** The training GEMM of the largest layer (MLP gate/up over the micro-batch): a probe shape next to the usual ones. */
const trainGemmShape = (tokens: number): [number, number, number] => [tokens, 18944, 3584];

export async function runTrainBench(opts: TrainBenchOptions, hooks: TrainBenchHooks): Promise<TrainBenchReport> {
  const load0 = loadAverage();
  if (load0 > 0.5) hooks.say(`load average ${load0.toFixed(2)}: other work is running, figures may come out low`);
  const dir = path.resolve(opts.modelDir ?? defaultTrainCheckpointDir(opts.shape));
  const ckpt = ensureTrainCheckpoint({ dir, shape: opts.shape, force: opts.regenerate, onProgress: hooks.onCheckpointProgress });
  hooks.say(ckpt.generated ? `checkpoint written to ${dir} in ${ckpt.seconds.toFixed(0)} s` : `checkpoint re-used: ${dir}`);

  const spec: TrainBatchSpec = { ...opts.batch, vocab: opts.shape.vocab };
  const batch = buildTrainBatch(spec);
  const batchFile = writeTorchBatch(path.join(dir, 'bench-batch'), batch, batchIds(spec).imagePad);
  const boxTokens = Array.from({ length: batch.numBoxes }, (_, i) => batch.cuBoxTokens[i + 1] - batch.cuBoxTokens[i]);
  const grids = Array.from({ length: batch.numImages }, (_, i) => ({ t: batch.imageGrids[3 * i], h: batch.imageGrids[3 * i + 1], w: batch.imageGrids[3 * i + 2] }));
  const microCost = trainStepCost(opts.shape, {
    sampleTokens: Array.from({ length: batch.numSamples }, (_, s) => batch.cuSeqlens[s + 1] - batch.cuSeqlens[s]),
    targets: batch.numTargets, grids, boxTokens, latentCount: spec.latentCount,
  });
  const cost = accumulatedStepCost(microCost, opts.gradientAccumulationSteps);

  const { addon, info } = loadProbeAddon(opts.threads, opts.ours, hooks.say);
  let py: PythonInfo = { available: false, python: '', reason: 'disabled (--torch off)' };
  if (opts.torch !== 'off' && opts.torchModes.length) {
    py = findTorchPython(opts.python);
    if (!py.available && opts.torch === 'on') throw new Error(`--torch on: ${py.reason}`);
    hooks.say(py.available ? `PyTorch: ${py.python} (torch ${py.torch}, transformers ${py.transformers})` : `PyTorch: not available (${py.reason})`);
  }

  const cuda = opts.device === 'cuda';
  if (cuda && opts.probes) hooks.say('--device cuda: MFU against the GPU\'s datasheet bf16 peak (the host GEMM probes are skipped)');
  const probes = opts.probes && !cuda;
  const otherLoad: Record<string, { cores: number; steal: number }> = {};
  const phase = makePhaseRunner(opts.waitIdleS, hooks.say, otherLoad);

  const gemmOurs: GemmProbe[] = [];
  let gemmTorch: TorchGemmResult | undefined;
  if (probes && addon && hasNativeProbes(addon)) {
    hooks.say('probing bf16 GEMM throughput ...');
    gemmOurs.push(...(await phase('gemm probe', () => probeGemm(addon!, 'bf16'))));
    const [m, n, k] = trainGemmShape(batch.numTokens);
    gemmOurs.push(await phase('gemm probe (train shape)', () => addon!.benchGemm({ m, n, k, dtype: 'bf16', seconds: 3, minRepeats: 3 }) as GemmProbe));
  }
  if (probes && py.available) {
    try {
      gemmTorch = await phase('torch gemm probe', () => runTorchGemm(py, opts.threads), (r) => r.cpu_s ?? 0);
    } catch (e) {
      hooks.say(`torch GEMM probe failed: ${oneLine(e)}`);
    }
  }

  const runs: TrainRun[] = [];
  const errors: { kind: EngineKind; error: string }[] = [];
  const childLine = (l: string) => (/^(ours|torch) bf16/.test(l) ? hooks.say(l) : hooks.debug?.(l));
  const device: { ours?: string; torch?: string } = {};
  const common = {
    steps: opts.steps, warmup: opts.warmup, threads: opts.threads, lr: opts.lr, maxGradNorm: opts.maxGradNorm,
    gradientAccumulationSteps: opts.gradientAccumulationSteps,
  };
  if (opts.ours) {
    try {
      const req: TrainWorkerRequest = {
        model: dir, batch: spec, dtype: 'bf16', checkpointing: opts.checkpointing, ...common,
        ...(cuda ? { device: 'cuda' as const, optimizerStates: opts.optimizerStates ?? 'gpu' } : {}),
      };
      const r = await phase('vreflect', () => runOursTrainChild(req, childLine), (x) => x.cpu_s ?? 0);
      runs.push({
        kind: 'vreflect', steps: r.steps, peak_rss_bytes: r.peak_rss_bytes, setup_ms: r.setup_ms, foreign: otherLoad.vreflect, checkpointing: r.checkpointing,
        ...(r.gpu?.peak_used_bytes !== undefined ? { peak_device_bytes: r.gpu.peak_used_bytes } : {}),
      });
      if (cuda) device.ours = r.device;
      if (r.targets !== batch.numTargets) hooks.say(`warning: our trainer counted ${r.targets} targets, the batch has ${batch.numTargets}`);
    } catch (e) {
      errors.push({ kind: 'vreflect', error: oneLine(e) });
      hooks.say(`vreflect failed: ${oneLine(e)}`);
    }
  }
  let adamw: string | undefined;
  if (py.available) {
    for (const mode of opts.torchModes) {
      const kind: EngineKind = mode === 'plain' ? 'torch' : 'torch-ckpt';
      try {
        const r = await phase(kind, () => runTorchTrain(py, { model: dir, batchFile, checkpointing: mode === 'checkpointing', device: opts.device, ...common }, childLine), (x) => x.cpu_s ?? 0);
        runs.push({
          kind, steps: r.steps, peak_rss_bytes: r.peak_rss_bytes, setup_ms: r.load_s * 1000, foreign: otherLoad[kind],
          ...(r.peak_device_bytes !== undefined ? { peak_device_bytes: r.peak_device_bytes } : {}),
        });
        if (cuda) device.torch = r.device;
        adamw = r.adamw;
        if (r.tokens !== batch.numTokens || r.targets !== batch.numTargets)
          hooks.say(`warning: PyTorch saw ${r.tokens} tokens / ${r.targets} targets, the batch has ${batch.numTokens} / ${batch.numTargets}`);
      } catch (e) {
        errors.push({ kind, error: oneLine(e) });
        hooks.say(`${kind} failed: ${oneLine(e)}`);
      }
    }
  }

  const inputs: TrainBenchInputs = {
    date: new Date().toISOString(),
    cpu: thisCpu(),
    threads: opts.threads,
    loadAverageAtStart: load0,
    gradient_accumulation_steps: opts.gradientAccumulationSteps,
    gemmPath: info ? { bf16: info.cpu.gemm_bf16, fp32: info.cpu.gemm_f32, onednn: info.onednn } : undefined,
    model: { dir, shape: opts.shape, parameters: ckpt.parameters, weightBytes: ckpt.weightBytes, counts: trainParamCounts(opts.shape, spec.latentCount) },
    batch: { spec, tokens: batch.numTokens, targets: batch.numTargets, visualTokens: batch.numVisualTokens, patches: batch.numPatches, boxTokens },
    cost,
    gemmOurs,
    gemmTorch,
    otherLoad,
    runs,
    errors,
    torch: { available: py.available, reason: py.reason, torch: py.torch, transformers: py.transformers, adamw },
    ...(cuda ? { device, gpuPeak: gpuBf16Peak(device.ours ?? device.torch) } : {}),
  };
  return buildTrainReport(inputs);
}

/** Our trainer in a child process (compiled worker; needs `tsc` output, as bin/vreflect.js does). */
async function runOursTrainChild(req: TrainWorkerRequest, say: (l: string) => void): Promise<TrainWorkerResult> {
  const script = trainWorkerScript();
  if (!fs.existsSync(script)) throw new Error(`bench: ${script} not found (build the TypeScript first: npm run build:ts)`);
  return (await runJsonChild(process.execPath, [script, JSON.stringify(req)], { label: 'vreflect bf16', timeoutMs: 3_600_000, onStderrLine: say })) as TrainWorkerResult;
}
