// Our side of `vreflect bench train`, in a child process (so VmHWM is this run's own peak): the pre-flight memory
// plan, the native Trainer on the benchmark checkpoint, then warm-up and timed optimizer steps on the same synthetic
// micro-batch: N forward+backward passes accumulating gradients (gradScale 1/N, as train-stage1 with
// --gradient-accumulation-steps N), then one clip + AdamW update. device 'cuda': the GPU trainer (native/cuda/model/
// gpu_trainer: bf16, decoder checkpointed or not as the GPU plan chose), device memory sampled (total - free) after setup, each micro-batch and each
// update; the host memory plan is not applied there (the CLI's --device pre-flight planned the GPU). As a script: `node train_worker.js '<TrainWorkerRequest JSON>'` prints
// one JSON line (TrainWorkerResult) on stdout; progress lines go to stderr.
import * as path from 'path';

import { openCheckpoint } from '../model/checkpoint';
import { loadModelConfig } from '../model/config';
import { loadAddon, NativeAddon } from '../native/addon';
import { createNativeTrainer, StepLosses } from '../native/trainer';
import { CheckpointingMode, enforceMemoryPlan, MemoryPlan, planTrainingMemory } from '../train/memory_plan';
import { oneLine } from '../util/errors';
import { setLogLevel } from '../util/log';
import { rssBytes } from './machine';
import { buildTrainBatch, TrainBatchSpec } from './train_batch';

/** What both sides of `bench train` are given: the checkpoint, the schedule of the measured steps and the update. */
export interface TrainRunSettings {
  model: string;
  threads: number;
  steps: number;
  warmup: number;
  lr: number;
  maxGradNorm: number;
  /** forward+backward passes per optimizer step (upstream's recipe: 8; torch_train.py --grad-accum) */
  gradientAccumulationSteps: number;
}

export interface TrainWorkerRequest extends TrainRunSettings {
  batch: TrainBatchSpec;
  dtype: 'bf16' | 'fp32';
  /** --gradient-checkpointing (default auto: off when the kept activations fit); cuda: the GPU plan's choice, resolved
   * by the caller (benchTrainDevicePreflight), auto meaning on here */
  checkpointing?: CheckpointingMode;
  /** cpu (default) or cuda: the GPU trainer */
  device?: 'cpu' | 'cuda';
  /** cuda: where AdamW's state lives (default gpu) */
  optimizerStates?: 'gpu' | 'host';
}

/** --device cuda: the GPU and the device memory this run held. */
export interface TrainWorkerDevice {
  name: string;
  memory_bytes: number;
  /** total - free before the trainer was made (the CUDA context, other processes); absent when free is unknown */
  used_before_bytes?: number;
  /** the largest total - free seen after setup, after each micro-batch and each update (device arenas of the
   * trainer; transient scratch freed inside a call is not seen); absent when free is unknown (the emulator
   * without VREFLECT_CUDA_EMU_MEMORY) */
  peak_used_bytes?: number;
  optimizer_states: 'gpu' | 'host';
}

/** One optimizer step: all its micro-batches, then the update. Losses are the micro-batches' mean. */
export interface StepTiming {
  step_ms: number;
  /** all N forward+backward passes together */
  fwd_bwd_ms: number;
  optimizer_ms: number;
  loss: number;
  loss_ce: number;
  loss_align: number;
  grad_norm: number;
  /** CPU seconds of this process in user and kernel mode during the step (kernel time: mostly page faults) */
  user_s: number;
  sys_s: number;
}

export interface TrainWorkerResult {
  ok: true;
  dtype: string;
  threads: number;
  gemm: { f32: string; bf16: string };
  memory_plan: MemoryPlan;
  /** whether the steps recomputed each layer (the memory plan's decision) */
  checkpointing: boolean;
  setup_ms: number;
  gradient_accumulation_steps: number;
  /** tokens and CE targets of ONE micro-batch */
  tokens: number;
  targets: number;
  steps: StepTiming[];
  rss_after_setup_bytes: number;
  peak_rss_bytes: number;
  cpu_s: number;
  /** 'cpu', or the GPU's name */
  device: string;
  /** --device cuda only */
  gpu?: TrainWorkerDevice;
}

/** The first GPU's total and free bytes as the addon's runtime (or the emulator's driver) sees them. */
function gpuMemory(addon: NativeAddon): { name: string; total: number; free?: number } {
  const p = addon.cudaProbe({ freeMemory: true });
  const d = (p.runtime?.devices?.[0] ?? p.driver?.devices?.[0]) as { name: string; memoryBytes: number; freeBytes: number | null } | undefined;
  if (!d) throw new Error(`train_worker: no CUDA device (${p.runtime?.error ?? p.driver?.error ?? 'none listed'})`);
  return { name: d.name, total: d.memoryBytes, ...(d.freeBytes !== null && d.freeBytes !== undefined ? { free: d.freeBytes } : {}) };
}

export async function measureOursTrain(req: TrainWorkerRequest, progress: (m: string) => void = () => {}): Promise<TrainWorkerResult> {
  const ga = req.gradientAccumulationSteps;
  if (!Number.isInteger(ga) || ga < 1) throw new Error(`train_worker: gradientAccumulationSteps must be an integer >= 1, got ${ga}`);
  const t0 = Date.now();
  const addon = loadAddon();
  addon.setThreads(req.threads);
  const cfg = loadModelConfig(req.model);
  const ckpt = openCheckpoint(req.model, cfg);
  const tensors = [...ckpt.tensors, ...ckpt.extra];
  const batch = buildTrainBatch(req.batch);
  const cuda = req.device === 'cuda';
  if (cuda && req.dtype !== 'bf16') throw new Error('train_worker: the GPU trainer is bf16 only (dtype fp32 runs on the CPU)');
  const plan = planTrainingMemory(cfg, tensors, {
    dtype: req.dtype, packing: false, perDeviceBatchSize: req.batch.samples, imageMaxPixels: req.batch.imageSize ** 2, stage: 1,
    checkpointing: cuda ? (req.checkpointing === 'off' ? 'off' : 'on') : req.checkpointing ?? 'auto',
  });
  if (!cuda) enforceMemoryPlan(plan);  // the host plan: on cuda the weights and activations live on the GPU
  const lvrId = cfg.lvr.lvr;
  if (lvrId === undefined) throw new Error(`${req.model}/config.json has no lvr_id`);
  let gpu: TrainWorkerDevice | undefined;
  const sampleGpu = () => {
    if (!gpu) return;
    const m = gpuMemory(addon);
    if (m.free !== undefined) gpu.peak_used_bytes = Math.max(gpu.peak_used_bytes ?? 0, m.total - m.free);
  };
  if (cuda) {
    const m = gpuMemory(addon);
    gpu = { name: m.name, memory_bytes: m.total, optimizer_states: req.optimizerStates ?? 'gpu', ...(m.free !== undefined ? { used_before_bytes: m.total - m.free } : {}) };
  }
  const trainer = await createNativeTrainer(cfg, req.dtype, tensors, {
    stage: 1, latentCount: req.batch.latentCount, lambdaResampler: 0.5, lambdaAttn: 1, weightDecay: 0.1, seed: 42, lvrId,
    gradientCheckpointing: plan.checkpointing,
    ...(cuda ? { device: 'cuda' as const, optimizerStates: gpu!.optimizer_states } : {}),
  });
  sampleGpu();
  const setupMs = Date.now() - t0;
  const rssAfterSetup = rssBytes().current;

  const step = async (): Promise<StepTiming & { raw: StepLosses }> => {
    const cpu0 = process.cpuUsage();
    const a = performance.now();
    const micro: StepLosses[] = [];
    for (let m = 0; m < ga; m++) {
      micro.push(await trainer.forwardBackward(batch, 1 / ga));
      sampleGpu();  // cudaMemGetInfo: a few microseconds, inside the timed step
    }
    const b = performance.now();
    const gradNorm = await trainer.optimizerStep(req.lr, req.maxGradNorm);
    const c = performance.now();
    sampleGpu();
    const cpu = process.cpuUsage(cpu0);
    const mean = (f: (l: StepLosses) => number) => micro.reduce((acc, l) => acc + f(l), 0) / ga;
    return {
      step_ms: c - a, fwd_bwd_ms: b - a, optimizer_ms: c - b,
      loss: mean((l) => l.loss), loss_ce: mean((l) => l.loss_ce), loss_align: mean((l) => l.loss_resampler), grad_norm: gradNorm,
      user_s: cpu.user / 1e6, sys_s: cpu.system / 1e6, raw: micro[0],
    };
  };
  for (let i = 0; i < req.warmup; i++) {
    const s = await step();
    progress(`ours ${req.dtype}: warm-up ${i + 1}/${req.warmup}: ${s.step_ms.toFixed(0)} ms (${ga} micro-batch${ga === 1 ? '' : 'es'} + AdamW), loss ${s.loss.toFixed(3)}`);
  }
  const steps: StepTiming[] = [];
  let targets = 0;
  for (let i = 0; i < req.steps; i++) {
    const { raw, ...s } = await step();
    targets = raw.targets;
    steps.push(s);
    progress(
      `ours ${req.dtype}: step ${i + 1}/${req.steps}: ${s.step_ms.toFixed(0)} ms (fwd+bwd ${s.fwd_bwd_ms.toFixed(0)} over ${ga} micro-batch${ga === 1 ? '' : 'es'}, AdamW ${s.optimizer_ms.toFixed(0)}), ` +
        `loss ${s.loss.toFixed(3)} (ce ${s.loss_ce.toFixed(3)}, align ${s.loss_align.toFixed(4)}), CPU user ${s.user_s.toFixed(1)} s, kernel ${s.sys_s.toFixed(1)} s`,
    );
  }
  const info = addon.info();
  const cpu = process.cpuUsage();
  return {
    ok: true,
    dtype: req.dtype,
    threads: info.cpu.threads,
    gemm: { f32: info.cpu.gemm_f32, bf16: info.cpu.gemm_bf16 },
    memory_plan: plan,
    checkpointing: plan.checkpointing,
    setup_ms: setupMs,
    gradient_accumulation_steps: ga,
    tokens: batch.numTokens,
    targets,
    steps,
    rss_after_setup_bytes: rssAfterSetup,
    peak_rss_bytes: rssBytes().peak,
    cpu_s: (cpu.user + cpu.system) / 1e6,
    device: gpu ? gpu.name : 'cpu',
    ...(gpu ? { gpu } : {}),
  };
}

export function trainWorkerScript(): string {
  return path.join(__dirname, 'train_worker.js');
}

if (require.main === module) {
  setLogLevel('warn');
  let req: TrainWorkerRequest;
  try {
    req = JSON.parse(process.argv[2] ?? '');
  } catch {
    process.stdout.write(JSON.stringify({ ok: false, error: 'train_worker: argument 1 must be the request as JSON' }) + '\n');
    process.exit(2);
  }
  measureOursTrain(req, (m) => process.stderr.write(m + '\n'))
    .then((r) => process.stdout.write(JSON.stringify(r) + '\n'))
    .catch((e) => {
      process.stdout.write(JSON.stringify({ ok: false, error: oneLine(e) }) + '\n');
      process.exitCode = 1;
    });
}
