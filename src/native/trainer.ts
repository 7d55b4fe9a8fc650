// The typed face of the addon's Trainer (native/addon/trainer_binding.cc) as the training loop uses it: one
// coarse object per run; every call that computes returns a promise (it runs on the libuv pool).
import * as fs from 'fs';

import type { TrainBatch } from '../data/batch';
import type { CheckpointTensor } from '../model/checkpoint';
import type { ModelConfig } from '../model/config';
import { TensorData, writeSafetensors } from '../model/safetensors_writer';
import { loadAddon } from './addon';

export interface TrainSettings {
  stage: 1 | 2;
  latentCount: number;
  lambdaResampler: number;
  lambdaAttn: number;
  weightDecay: number;
  seed: number;
  lvrId: number;
  /** recompute each LLM layer in the backward instead of keeping its activations (default true) */
  gradientCheckpointing?: boolean;
  /** cpu (default) or cuda: the GPU trainer (native/cuda/model/gpu_trainer; stages 1 and 2, bf16) */
  device?: 'cpu' | 'cuda';
  /** cuda only: where the AdamW state lives (resolved from the memory plan; the addon reads 'auto' as gpu) */
  optimizerStates?: 'auto' | 'gpu' | 'host';
}

export interface StepLosses {
  loss: number;
  loss_ce: number;
  loss_resampler: number;
  loss_mse: number;
  loss_kl: number;
  resampler_skipped: boolean;
  tokens: number;
  targets: number;
  boxes: number;
}

/**
 * The attention maps the latent losses saw for one box (native BoxAttention), head-averaged, each [K, S]
 * row-major over the S visual tokens of the box's sample (all its images, in V order). The sample's first image
 * owns columns [0, (grid[1]/merge) * (grid[2]/merge)) in raster order over its merged-token grid.
 */
export interface BoxAttentionMaps {
  /** index of the box in the batch, the sample that owns it, and that sample's first image (batch indices) */
  box: number;
  sample: number;
  image: number;
  /** the image's (t, h, w) in patches */
  grid: [number, number, number];
  /** S: visual tokens of the sample */
  tokens: number;
  /** the box's token indices local to the sample (the batch's boxLocalIdx slice) */
  boxTokens: Int32Array;
  /** BCM teacher's map scattered to the sample's token coordinates as the KL does: 0 outside the box */
  teacher: Float32Array;
  /** DAC student's map (stage 2); null in stage 1 */
  student: Float32Array | null;
}

export interface CaptureRequest {
  /** how many of the batch's boxes to capture, first ones first (default: all) */
  maxBoxes?: number;
}

export interface NativeTrainer {
  /**
   * forward + backward of one micro-batch; gradients accumulate, scaled by gradScale (1 / accumulation). With a
   * capture request the result also holds the boxes' attention maps (an empty list when the batch has no box).
   */
  forwardBackward(batch: TrainBatch, gradScale: number): Promise<StepLosses>;
  forwardBackward(batch: TrainBatch, gradScale: number, capture: CaptureRequest): Promise<StepLosses & { attention: BoxAttentionMaps[] }>;
  /** clip (maxGradNorm > 0), AdamW with this lr, zero the gradients; resolves to the norm before clipping. */
  optimizerStep(lr: number, maxGradNorm: number): Promise<number>;
  /** the whole model (trained tensors + the frozen vision tower) as an HF safetensors file. */
  saveWeights(file: string, dtype: 'bf16' | 'fp32'): Promise<void>;
  /** master weights + AdamW moments + step, for an exact resume. */
  saveState(file: string): Promise<void>;
  loadState(tensors: CheckpointTensor[], step: number): Promise<void>;
}

interface RawTrainer {
  forwardBackward(
    batch: TrainBatch,
    o: { gradScale: number; captureAttention?: boolean; captureBoxes?: number },
  ): Promise<Record<string, unknown> & { attention?: BoxAttentionMaps[] }>;
  optimizerStep(o: { lr: number; maxGradNorm: number }): Promise<{ gradNorm: number; step: number }>;
  tensorList(): { name: string; shape: number[]; trainable: boolean }[];
  getTensor(name: string, o: { dtype: 'fp32' | 'bf16' }): Float32Array | Uint16Array;
  saveState(path: string): Promise<void>;
  loadState(o: { step: number; tensors: CheckpointTensor[] }): Promise<void>;
}

/** Reads a tensor's bytes from its checkpoint file (the frozen vision tower is saved unchanged). */
function readTensorBytes(t: CheckpointTensor): Buffer {
  const fd = fs.openSync(t.file, 'r');
  try {
    const buf = Buffer.alloc(t.nbytes);
    for (let done = 0; done < t.nbytes; ) {
      const n = fs.readSync(fd, buf, done, Math.min(t.nbytes - done, 1 << 30), t.offset + done);
      if (n <= 0) throw new Error(`${t.file}: unexpected end of file reading ${t.name}`);
      done += n;
    }
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

export async function createNativeTrainer(
  cfg: ModelConfig,
  dtype: 'fp32' | 'bf16',
  tensors: CheckpointTensor[],
  s: TrainSettings,
): Promise<NativeTrainer> {
  const addon = loadAddon();
  if (typeof addon.createTrainer !== 'function') throw new Error('this build of the addon has no trainer');
  const raw: RawTrainer = await addon.createTrainer({
    config: { text: cfg.text, vision: cfg.vision, imageTokenId: cfg.tokens.image, visionStartTokenId: cfg.tokens.visionStart },
    dtype,
    tensors,
    train: { stage: s.stage, latentCount: s.latentCount, lambdaResampler: s.lambdaResampler, lambdaAttn: s.lambdaAttn, seed: s.seed, lvrId: s.lvrId, weightDecay: s.weightDecay,
      gradientCheckpointing: s.gradientCheckpointing ?? true },
    ...(s.device ? { device: s.device } : {}),
    ...(s.optimizerStates ? { optimizerStates: s.optimizerStates } : {}),
  });
  const frozen = tensors.filter((t) => t.name.startsWith('visual.'));
  // One implementation for both overloads: the capture options are only sent when asked for.
  async function forwardBackward(batch: TrainBatch, gradScale: number, capture?: CaptureRequest): Promise<any> {
    const opts = capture ? { gradScale, captureAttention: true, captureBoxes: capture.maxBoxes } : { gradScale };
    const l = await raw.forwardBackward(batch, opts);
    const losses: StepLosses = {
      loss: Number(l.loss),
      loss_ce: Number(l.lossCe),
      loss_resampler: Number(l.lossResampler),
      loss_mse: Number(l.lossMse ?? 0),
      loss_kl: Number(l.lossKl ?? 0),
      resampler_skipped: Boolean(l.resamplerSkipped),
      tokens: Number(l.tokens),
      targets: Number(l.targets),
      boxes: Number(l.boxes),
    };
    return capture ? { ...losses, attention: l.attention ?? [] } : losses;
  }
  return {
    forwardBackward,
    async optimizerStep(lr, maxGradNorm) {
      return (await raw.optimizerStep({ lr, maxGradNorm })).gradNorm;
    },
    async saveWeights(file, wdtype) {
      const out = new Map<string, TensorData>();
      for (const t of raw.tensorList())
        out.set(t.name, { dtype: wdtype === 'bf16' ? 'BF16' : 'F32', shape: t.shape, data: raw.getTensor(t.name, { dtype: wdtype }) });
      for (const t of frozen) if (!out.has(t.name)) out.set(t.name, { dtype: t.dtype, shape: t.shape, data: readTensorBytes(t) });
      writeSafetensors(file, out, { format: 'pt' });
    },
    saveState: (file) => raw.saveState(file),
    loadState: (records, step) => raw.loadState({ step, tensors: records }),
  };
}
