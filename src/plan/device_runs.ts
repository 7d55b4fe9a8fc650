// The --device pre-flight of each command: the plan inputs it knows (model config, image size, training
// micro-batch), handed to resolveDevice (preflight.ts), which returns the device the run uses ('cpu' or 'cuda')
// or throws the one-line reason --device cuda cannot be used. train-stage1/2 and bench train run on the GPU (with the
// optimizer placement and gradient checkpointing the plan chose, --attention-maps included); the training flags the
// GPU trainer lacks (--dtype fp32) resolve to the CPU (auto) or refuse (cuda).
import sharp from 'sharp';

import { EVAL_MAX_PIXELS, EVAL_MIN_PIXELS } from '../eval/benchmarks/common';
import { smartResize } from '../image/smart_resize';
import { UserError } from '../util/errors';
import { log } from '../util/log';
import { GpuPlan, OptimizerStates, planInference, planTraining } from './gpu_memory';
import { PRESETS } from './model_shape';
import { planModel, withLayers } from './model_source';
import { formatBytes } from './units';
import { CudaPath, cudaLooksUsable, Device, DeviceChoice, resolveDevice } from './preflight';
import { largestMicroBatch } from './train_batch_shape';

/** Text tokens assumed around the image when the prompt is not tokenised yet (chat template + question). */
const PROMPT_TOKENS = 512;

/** 'auto' on a machine without a usable GPU: the CPU, without reading the plan's inputs. */
function quickCpu(device: DeviceChoice): boolean {
  if (device === 'cpu') return true;
  if (device === 'auto' && !cudaLooksUsable()) {
    log().debug('--device auto: no usable CUDA device, running on the CPU');
    return true;
  }
  return false;
}

export async function inferDevicePreflight(a: {
  device: DeviceChoice; model: string; images: string[]; maxNewTokens: number; latentSteps: number; minPixels?: number; maxPixels?: number;
}): Promise<Device> {
  if (quickCpu(a.device)) return 'cpu';
  // several images: their tokens add up in the prompt (and, conservatively, in the vision tower's plan)
  let imageTokens = 0;
  for (const image of a.images) {
    const meta = await sharp(image).metadata().catch((e: Error) => {
      throw new UserError(`cannot read the image size of ${image}: ${e.message}`);
    });
    const m = planModel(a.model);
    const [h, w] = smartResize(meta.height ?? 1, meta.width ?? 1, {
      minPixels: a.minPixels ?? m.minPixels ?? EVAL_MIN_PIXELS,
      maxPixels: a.maxPixels ?? m.maxPixels ?? EVAL_MAX_PIXELS,
    });
    imageTokens += (h * w) / (28 * 28);
  }
  return resolveDevice(a.device, (c) =>
    planInference({ shape: planModel(a.model).shape, imageTokens, promptTokens: PROMPT_TOKENS, maxNewTokens: a.maxNewTokens, latentSteps: a.latentSteps, ...c, pixelsFlag: '--max-pixels' }),
  );
}

/** eval: the worst case of the run, an image at the largest max_pixels any selected benchmark allows. */
export function evalDevicePreflight(a: { device: DeviceChoice; model: string; maxPixels: number; maxNewTokens: number; latentSteps: number }): Device {
  if (quickCpu(a.device)) return 'cpu';
  return resolveDevice(a.device, (c) =>
    planInference({
      shape: planModel(a.model).shape, imageTokens: Math.floor(a.maxPixels / (28 * 28)), promptTokens: PROMPT_TOKENS, maxNewTokens: a.maxNewTokens,
      latentSteps: a.latentSteps, ...c, pixelsFlag: '--hrbench8k-max-pixels / --hrbench4k-max-pixels',
    }),
  );
}

/** The device a training run uses, where its AdamW state lives on cuda and whether its decoder recomputes (the plan's choices for 'auto'). */
export interface TrainDevice {
  device: Device;
  /** cuda only: resolved (never 'auto') */
  optimizerStates?: OptimizerStates;
  /** cuda only: --gradient-checkpointing resolved by the GPU plan (auto: off when the plan without recomputation fits) */
  checkpointing?: boolean;
}

/** Logs the GPU plan's training decisions, as the CPU run logs its memory plan. */
function logTrainPlan(p: GpuPlan, mode: 'on' | 'off' | 'auto'): void {
  const decoder = p.items.filter((i) => i.what.startsWith('decoder')).reduce((a, i) => a + i.bytes, 0);
  log().info({
    optimizer_states: p.optimizerStates, gradient_checkpointing: p.checkpointing ? 'on' : 'off', gradient_checkpointing_mode: mode,
    decoder_activation_bytes: decoder, gpu_bytes: p.gpuBytes, gpu_capacity: p.gpuCapacity,
  }, 'GPU training plan');
}

/**
 * train-stage1/2: --device cuda checks the GPU and the memory plan, then runs on the GPU trainer (--attention-maps
 * too; --gradient-checkpointing on / off / auto, auto decided by the plan); --dtype fp32 has no GPU path (one line
 * on cuda, the CPU on auto).
 */
export function trainDevicePreflight(a: {
  device: DeviceChoice; model: string; stage: 1 | 2; packing: boolean; perDeviceBatchSize: number; imageMaxPixels: number; optimizerStates: OptimizerStates | 'auto';
  gradientCheckpointing?: 'on' | 'off' | 'auto'; dtype?: 'fp32' | 'bf16';
}): TrainDevice {
  if (quickCpu(a.device)) return { device: 'cpu' };
  const mb = largestMicroBatch(a);
  const mode = a.gradientCheckpointing ?? 'auto';
  let chosen: GpuPlan | undefined;
  const device = resolveDevice(a.device, (c) => {
    chosen = planTraining({ shape: planModel(a.model).shape, stage: a.stage, ...mb, optimizerStates: a.optimizerStates, checkpointing: mode, ...c });
    return chosen;
  }, trainCudaPath(a));
  if (device === 'cpu') return { device };
  if (chosen) logTrainPlan(chosen, mode);
  return { device, optimizerStates: chosen?.optimizerStates, checkpointing: chosen?.checkpointing };
}

/** Whether this training run has a GPU path (GpuTrainer: both stages, bf16, with or without recomputation, attention capture). */
function trainCudaPath(a: { dtype?: 'fp32' | 'bf16' }): CudaPath {
  // One precision on the GPU, as infer's: an explicit fp32 run is a CPU run (auto picks the CPU for it).
  if (a.dtype === 'fp32')
    return { refuse: '--dtype fp32 runs on the CPU only: the GPU trainer computes in bf16 (fp32 masters and moments); use --device cpu or --dtype bf16' };
  return 'run';
}

/** bench infer: the 7B widths with the benchmark's layer counts. */
export function benchDevicePreflight(a: {
  device: DeviceChoice; llmLayers: number; vitLayers: number; imageTokens?: number; newTokens?: number;
}): Device {
  if (quickCpu(a.device)) return 'cpu';
  const shape = withLayers(PRESETS['7b'], a.llmLayers, a.vitLayers);
  return resolveDevice(a.device, (c) =>
    planInference({ shape, imageTokens: a.imageTokens ?? 256, promptTokens: PROMPT_TOKENS, maxNewTokens: a.newTokens ?? 512, latentSteps: 8, ...c }),
  );
}

/**
 * bench train: the 7B widths with the benchmark's layer counts and vocabulary, one micro-batch of `tokens`; on cuda
 * the GPU trainer with the optimizer placement and gradient checkpointing the plan chose (the plan's refusal names
 * the alternatives).
 */
export function benchTrainDevicePreflight(a: {
  device: DeviceChoice; llmLayers: number; vitLayers: number; vocab: number; tokens: number; imageTokens: number; gradientCheckpointing?: 'on' | 'off' | 'auto';
}): TrainDevice {
  if (quickCpu(a.device)) return { device: 'cpu' };
  const shape = withLayers(PRESETS['7b'], a.llmLayers, a.vitLayers, a.vocab);
  const mode = a.gradientCheckpointing ?? 'auto';
  let chosen: GpuPlan | undefined;
  const device = resolveDevice(a.device, (c) => {
    const p = planTraining({ shape, stage: 1, tokens: a.tokens, visualTokens: Math.min(a.tokens, a.imageTokens), optimizerStates: 'auto', checkpointing: mode, ...c });
    chosen = p;
    // The training plan's advice names train-stage1's flags; the benchmark has its own.
    if (p.fits) return p;
    return { ...p, problem: `bench train (${a.llmLayers} LLM + ${a.vitLayers} ViT layers of the 7B, vocabulary ${a.vocab}) needs ${formatBytes(p.gpuBytes)} of GPU ` +
      `memory with the optimizer states on the ${p.optimizerStates === 'host' ? 'host' : 'GPU'}${p.checkpointing ? '' : ' and no gradient checkpointing'}, ${formatBytes(c.gpuCapacity)} is available: ` +
      `${p.checkpointing ? '' : 'pass --gradient-checkpointing auto or on, or '}lower --llm-layers, --vocab, --samples or --tokens` };
  }, trainCudaPath({}));
  if (device === 'cpu') return { device };
  if (chosen) logTrainPlan(chosen, mode);
  return { device, optimizerStates: chosen?.optimizerStates, checkpointing: chosen?.checkpointing };
}
