// The pre-flight memory check of a training run: parameters + optimizer state + the activations of the largest
// micro-batch the settings allow, against the memory this process can use. A run that cannot fit is refused before
// any work, naming the flag to change (issue #5). It also settles --gradient-checkpointing auto: recomputation
// stays off (faster: no second forward of every layer) when the activations kept without it fit.
import * as fs from 'fs';
import * as os from 'os';

import { estimateActivationMemory } from '../data/memory';
import type { CheckpointTensor } from '../model/checkpoint';
import type { ModelConfig } from '../model/config';
import { headParams } from '../plan/model_shape';
import { largestMicroBatch } from '../plan/train_batch_shape';
import { UserError } from '../util/errors';

export interface MemoryPlan {
  trainableParams: number;
  frozenParams: number;
  /** fp32 master weights + gradients + AdamW moments of the trainable tensors (16 B each) */
  optimizerBytes: number;
  /** the frozen vision tower as mapped from the checkpoint file */
  frozenBytes: number;
  /** activations of the largest micro-batch under the chosen checkpointing */
  activationBytes: number;
  totalBytes: number;
  availableBytes: number;
  /** whether the run recomputes each LLM layer in the backward (gradient checkpointing) */
  checkpointing: boolean;
  /** how that was decided: the flag's value ('on' / 'off') or 'auto' */
  checkpointingMode: CheckpointingMode;
}

export type CheckpointingMode = 'auto' | 'on' | 'off';

/** auto keeps activations only when the whole plan without recomputation stays under this share of memory. */
const AUTO_OFF_SHARE = 0.85;

/** Memory this process may use: the cgroup limit when one is set, else physical memory. */
export function availableMemory(): number {
  for (const f of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const v = fs.readFileSync(f, 'utf8').trim();
      const n = Number(v);
      if (v !== 'max' && Number.isFinite(n) && n > 0 && n < os.totalmem()) return n;
    } catch {
      /* not in a cgroup with a limit */
    }
  }
  return os.totalmem();
}

const numel = (t: CheckpointTensor) => t.shape.reduce((a, b) => a * b, 1);

export function planTrainingMemory(
  cfg: ModelConfig,
  tensors: CheckpointTensor[],
  o: {
    dtype: 'fp32' | 'bf16';
    packing: boolean;
    perDeviceBatchSize: number;
    imageMaxPixels: number;
    stage: 1 | 2;
    /** default 'on' (upstream trains with gradient checkpointing) */
    checkpointing?: CheckpointingMode;
  },
): MemoryPlan {
  let trainable = 0, frozen = 0, frozenBytes = 0;
  for (const t of tensors) {
    const isFrozen = t.name.startsWith('visual.') || (o.stage === 2 && t.name.startsWith('box_feature_resampler.'));
    if (isFrozen) {
      frozen += numel(t);
      frozenBytes += t.nbytes;
    } else trainable += numel(t);
  }
  // BCM / DAC heads not yet in the checkpoint (stage 1 from a base model; stage 2's student).
  const head = headParams(cfg.text);
  if (!tensors.some((t) => t.name.startsWith('box_feature_resampler.'))) trainable += head;
  if (o.stage === 2 && !tensors.some((t) => t.name.startsWith('student_resampler.'))) trainable += head;

  const { tokens, visualTokens } = largestMicroBatch(o);
  const actBytes = (checkpointing: boolean) =>
    estimateActivationMemory(
      { samples: 4, tokens, visualTokens, patches: visualTokens * 4, images: 4, boxes: 4, inputBytes: visualTokens * 4 * 1176 * 4 },
      cfg.text,
      cfg.vision,
      { activationBytes: 4, checkpointing },
    ).totalBytes;
  const optimizerBytes = trainable * 16 + (o.dtype === 'bf16' ? trainable * 2 : 0);
  const availableBytes = availableMemory();
  const mode = o.checkpointing ?? 'on';
  const keptTotal = optimizerBytes + frozenBytes + actBytes(false);
  const checkpointing = mode === 'on' || (mode === 'auto' && keptTotal > AUTO_OFF_SHARE * availableBytes);
  const activationBytes = actBytes(checkpointing);
  return {
    trainableParams: trainable,
    frozenParams: frozen,
    optimizerBytes,
    frozenBytes,
    activationBytes,
    totalBytes: optimizerBytes + frozenBytes + activationBytes,
    availableBytes,
    checkpointing,
    checkpointingMode: mode,
  };
}

const gb = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;

/** Throws a one-line UserError when the plan exceeds the available memory, naming what to change. */
export function enforceMemoryPlan(p: MemoryPlan): void {
  if (p.totalBytes <= p.availableBytes) return;
  const hint =
    p.optimizerBytes > p.availableBytes
      ? `the ${(p.trainableParams / 1e9).toFixed(2)}B trainable parameters alone need ${gb(p.optimizerBytes)} (fp32 weights, gradients, AdamW moments); train a smaller model or use a machine with more memory (a GPU run with optimizer offload is planned)`
      : !p.checkpointing
        ? `activations of the largest micro-batch need ${gb(p.activationBytes)} without recomputation: pass --gradient-checkpointing auto (or on)`
        : `activations of the largest micro-batch need ${gb(p.activationBytes)}: lower --image-max-pixels, or pass --enable-data-packing false with a smaller --per-device-batch-size`;
  throw new UserError(`training needs about ${gb(p.totalBytes)} but ${gb(p.availableBytes)} is available: ${hint}`);
}
