// Size of a micro-batch and a rough activation-memory estimate for it, for the pre-flight check of a training
// run ("refuses a run that cannot fit, naming the flag to change"). The estimate is deliberately simple: it
// counts the big tensors a forward + backward keeps, not allocator overheads; treat it as a lower bound with a
// safety factor chosen by the caller.
import type { TextConfig, VisionConfig } from '../model/config';
import type { TrainBatch } from './batch';

export interface BatchFootprint {
  samples: number;
  tokens: number;
  visualTokens: number;
  patches: number;
  images: number;
  boxes: number;
  /** bytes of the batch's own arrays (pixel values dominate) */
  inputBytes: number;
}

export function batchFootprint(b: TrainBatch): BatchFootprint {
  const arrays = [b.inputIds, b.cuSeqlens, b.positions, b.labels, b.targets, b.pixelValues, b.imageGrids, b.cuImageTokens,
    b.cuSampleVisual, b.boxTokenIdx, b.boxLocalIdx, b.cuBoxTokens, b.boxSample, b.lvrSlots, b.sampleIds];
  return {
    samples: b.numSamples,
    tokens: b.numTokens,
    visualTokens: b.numVisualTokens,
    patches: b.numPatches,
    images: b.numImages,
    boxes: b.numBoxes,
    inputBytes: arrays.reduce((a, x) => a + x.byteLength, 0),
  };
}

export interface MemoryEstimateOptions {
  /** bytes per activation element: 2 for bf16, 4 for fp32 */
  activationBytes: number;
  /** activation recomputation (gradient checkpointing) on */
  checkpointing: boolean;
  /** rows of logits the fused cross-entropy materialises at once (default 1024) */
  ceChunk?: number;
}

export interface MemoryEstimate {
  llmBytes: number;
  visionBytes: number;
  logitsBytes: number;
  totalBytes: number;
}

/**
 * Activations of one micro-batch:
 * - LLM, per layer and token: kept inputs of attention and MLP (~ 6*D + 2*kvDim) + MLP intermediates (3*I);
 *   with checkpointing only each layer's input (D) is kept, plus one layer recomputed in full;
 * - vision tower (forward only, frozen): one block live at a time (~ 6*Dv + 3*Iv per patch) + the merged output;
 * - logits: ceChunk x vocab in fp32, twice (logits and their gradient).
 */
export function estimateActivationMemory(fp: BatchFootprint, text: TextConfig, vision: VisionConfig, o: MemoryEstimateOptions): MemoryEstimate {
  const b = o.activationBytes, T = fp.tokens;
  const kvDim = text.kvHeads * text.headDim;
  const perLayer = T * (6 * text.hidden + 2 * kvDim + 3 * text.intermediate) * b;
  const llmBytes = o.checkpointing ? text.layers * T * text.hidden * b + perLayer : text.layers * perLayer;
  const visionBytes = fp.patches * (6 * vision.hidden + 3 * vision.intermediate) * b + fp.visualTokens * vision.outHidden * b;
  const logitsBytes = 2 * Math.min(T, o.ceChunk ?? 1024) * text.vocab * 4;
  return { llmBytes, visionBytes, logitsBytes, totalBytes: llmBytes + visionBytes + logitsBytes + fp.inputBytes };
}
