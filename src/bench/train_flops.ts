// FLOPs of one stage-1 training step (2 FLOP per multiply-add; norms, RoPE, softmax and the optimizer ignored).
// trainStepCost counts one micro-batch; with gradient accumulation an optimizer step runs N of them
// (accumulatedStepCost: every count, recompute included, times N; the AdamW update adds no FLOPs here).
//
// Model FLOPs (what the step must compute, the usual MFU numerator):
//   3 x forward of everything trained (forward, then backward = 2 x forward: input and weight gradients):
//     decoder-layer GEMMs over all tokens, causal attention within each sample, lm_head on the rows that have a
//     target (rows without one need no logits), BCM over each box;
//   + 1 x forward of the frozen vision tower and merger (no backward: nothing upstream of it is trained).
// Recompute (hardware FLOPs on top): with gradient checkpointing our trainer keeps only each layer's input and
// reruns the layer forward in the backward pass (counted in full here, though down_proj is not rerun), and its
// fused cross-entropy always recomputes the logits chunk by chunk in the backward;
// transformers with gradient checkpointing reruns each decoder layer forward (its lm_head is not recomputed).
import type { ImageGridThw } from './model_shape';
import { prefillCost, QWEN7B } from './model_shape';
import { qwenShapeOf, TrainBenchShape } from './train_model';

export interface TrainStepInput {
  /** tokens of each sample of the micro-batch (attention never crosses samples) */
  sampleTokens: number[];
  /** rows whose cross-entropy target is not -100 */
  targets: number;
  grids: ImageGridThw[];
  /** visual tokens (keys) of each box */
  boxTokens: number[];
  latentCount: number;
}

export interface TrainStepCost {
  /** micro-batches (forward + backward passes) per optimizer step that these counts cover */
  microBatches: number;
  tokens: number;
  /** forward multiply-adds per part */
  layerDenseMac: number;
  layerAttnMac: number;
  lmHeadMac: number;
  bcmMac: number;
  vitMac: number;
  /** 2 x (3 x trained forward + frozen ViT forward) */
  modelFlop: number;
  /** extra forward FLOPs our trainer recomputes with gradient checkpointing (layers + lm_head on target rows) */
  oursRecomputeFlop: number;
  /** extra forward FLOPs our trainer recomputes without it (lm_head on target rows) */
  oursKeptRecomputeFlop: number;
  /** extra forward FLOPs transformers recomputes with gradient checkpointing (layers only) */
  torchCheckpointRecomputeFlop: number;
}

/** Multiply-adds per token of one decoder layer's projections (q, k, v, o, gate, up, down). */
export function layerMacPerToken(): number {
  const m = QWEN7B;
  const kv = m.kvHeads * m.headDim;
  return m.hidden * (m.hidden + 2 * kv) + m.hidden * m.hidden + 3 * m.hidden * m.intermediate;
}

/** Causal attention of one layer over L tokens: QK^T and AV, query i sees i + 1 keys, all 28 heads of 128. */
export function causalAttnMac(L: number): number {
  return 2 * QWEN7B.heads * QWEN7B.headDim * ((L * (L + 1)) / 2);
}

/** BCM forward for one box of n visual tokens and K queries (8 heads of 448 = D wide in all). */
export function bcmMac(n: number, K: number): number {
  const D = QWEN7B.hidden;
  return K * D * D /* q proj */ + 2 * n * D * D /* k, v proj */ + 2 * K * n * D /* scores, weighted sum */ + K * D * D /* out proj */;
}

export function trainStepCost(s: TrainBenchShape, inp: TrainStepInput): TrainStepCost {
  const tokens = inp.sampleTokens.reduce((a, b) => a + b, 0);
  const layerDenseMac = s.llmLayers * tokens * layerMacPerToken();
  const layerAttnMac = s.llmLayers * inp.sampleTokens.reduce((a, L) => a + causalAttnMac(L), 0);
  const lmHeadMac = inp.targets * s.vocab * QWEN7B.hidden;
  const bcm = inp.boxTokens.reduce((a, n) => a + bcmMac(n, inp.latentCount), 0);
  const shape = qwenShapeOf(s);
  let vitMac = 0;
  for (const g of inp.grids) {
    const c = prefillCost(shape, g, 0);
    vitMac += c.vitDenseMac + c.vitAttnMac + c.mergerMac;
  }
  const trainedMac = layerDenseMac + layerAttnMac + lmHeadMac + bcm;
  return {
    microBatches: 1,
    tokens,
    layerDenseMac,
    layerAttnMac,
    lmHeadMac,
    bcmMac: bcm,
    vitMac,
    modelFlop: 2 * (3 * trainedMac + vitMac),
    oursRecomputeFlop: 2 * (layerDenseMac + layerAttnMac + lmHeadMac),
    oursKeptRecomputeFlop: 2 * lmHeadMac,
    torchCheckpointRecomputeFlop: 2 * (layerDenseMac + layerAttnMac),
  };
}

/** One optimizer step of n accumulated passes over micro-batches costing `micro` each. */
export function accumulatedStepCost(micro: TrainStepCost, n: number): TrainStepCost {
  if (!Number.isInteger(n) || n < 1) throw new Error(`gradient accumulation steps must be an integer >= 1, got ${n}`);
  const { microBatches, ...counts } = micro;
  const scaled = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v * n])) as Omit<TrainStepCost, 'microBatches'>;
  return { microBatches: microBatches * n, ...scaled };
}
