// The typed face of the addon's Trainer (native/addon/trainer_binding.cc): one coarse object per training run.
// Every call that computes returns a promise (it runs on the libuv pool).
import type { TrainBatch } from '../data/batch';
import type { CheckpointTensor } from '../model/checkpoint';

export interface TrainerSpec {
  config: {
    text: unknown;
    vision: unknown;
    imageTokenId: number;
    visionStartTokenId: number;
  };
  dtype: 'fp32' | 'bf16';
  tensors: CheckpointTensor[]; // every tensor of the checkpoint, incl. box_feature_resampler.* / student_resampler.*
  stage: 1 | 2;
  latentCount: number;
  lambdaResampler: number;
  lambdaAttn: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEps: number;
  seed: number;
  lvrId: number;
}

export interface StepLosses {
  loss: number;
  loss_ce: number;
  loss_resampler: number;
  loss_mse?: number;
  loss_kl?: number;
  resampler_skipped: boolean;
  tokens: number;
  targets: number;
  boxes: number;
}

export interface NativeTrainer {
  /** forward + backward of one micro-batch; gradients accumulate, scaled by gradScale (1 / accumulation). */
  forwardBackward(batch: TrainBatch, gradScale: number): Promise<StepLosses>;
  /** clip (maxGradNorm > 0), AdamW with this lr, zero the gradients; resolves to the norm before clipping. */
  optimizerStep(lr: number, maxGradNorm: number): Promise<number>;
  /** the model's weights with upstream's tensor names, as an HF safetensors file (dtype: bf16 or fp32). */
  saveWeights(file: string, dtype: 'bf16' | 'fp32'): Promise<void>;
  /** master weights + AdamW moments + step, for an exact resume. */
  saveState(file: string): Promise<void>;
  loadState(tensors: CheckpointTensor[], step: number): Promise<void>;
  readonly step: number;
}
