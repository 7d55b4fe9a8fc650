// Parameter counts of Qwen2.5-VL from its config (model.md §1, §9.4), for the GPU memory plan: the plan needs
// only shapes, so it runs before (or without) the weights being downloaded.
import type { TextConfig, VisionConfig } from '../model/config';

export interface ModelShape {
  name: string;
  text: TextConfig;
  vision: VisionConfig;
}

/** One decoder layer: q/k/v with bias, o and the MLP without, two RMSNorms. */
function llmLayerParams(t: TextConfig): number {
  const D = t.hidden, kv = t.kvHeads * t.headDim, q = t.heads * t.headDim;
  return D * q + q + 2 * (D * kv + kv) + q * D + 3 * D * t.intermediate + 2 * D;
}

/** LLM parameters: embeddings, 28 (or n) decoder layers, final norm, lm_head. */
export function llmParams(t: TextConfig): number {
  return t.vocab * t.hidden * (t.tieEmbeddings ? 1 : 2) + t.layers * llmLayerParams(t) + t.hidden;
}

/**
 * LLM parameters that are GEMM weights (the GPU trainer keeps a bf16 shadow of each): q/k/v/o and the three MLP
 * matrices of every layer, and lm_head (the embedding when tied). The rest - biases, norms and an untied
 * embedding - are read in fp32.
 */
export function llmGemmParams(t: TextConfig): number {
  const D = t.hidden, kv = t.kvHeads * t.headDim, q = t.heads * t.headDim;
  return t.layers * (D * q + 2 * D * kv + q * D + 3 * D * t.intermediate) + t.vocab * t.hidden;
}

/** The ViT + merger parameters in matrices (patch embedding, qkv, proj, MLP, merger linears): bf16 on the GPU. */
export function visionMatrixParams(v: VisionConfig): number {
  const Dv = v.hidden, patchIn = v.inChannels * v.temporalPatch * v.patch * v.patch, mergeIn = Dv * v.merge * v.merge;
  return Dv * patchIn + v.depth * (4 * Dv * Dv + 3 * Dv * v.intermediate) + mergeIn * mergeIn + mergeIn * v.outHidden;
}

/** ViT + merger: patch embedding (no bias), blocks (qkv/proj/MLP with biases, 2 RMSNorms), merger (norm + 2 linears). */
export function visionParams(v: VisionConfig): number {
  const Dv = v.hidden, patchIn = v.inChannels * v.temporalPatch * v.patch * v.patch;
  const block = 2 * Dv + (Dv * 3 * Dv + 3 * Dv) + (Dv * Dv + Dv) + 2 * (Dv * v.intermediate + v.intermediate) + (v.intermediate * Dv + Dv);
  const mergeIn = Dv * v.merge * v.merge;
  const merger = Dv + (mergeIn * mergeIn + mergeIn) + (mergeIn * v.outHidden + v.outHidden);
  return Dv * patchIn + v.depth * block + merger;
}

/** One BCM head (method.md §6): nn.MultiheadAttention(D, 8) + 8 learned queries + norms, ~51.4M for the 7B. */
export function headParams(t: TextConfig): number {
  const D = t.hidden;
  return 4 * D * D + 14 * D; // in/out projections with biases, queries, norms (also the CPU training memory plan's count)
}

/** The DAC student (stage 2): the BCM's attention and norms without learned queries (its queries are hidden states). */
export function dacParams(t: TextConfig): number {
  const D = t.hidden;
  return 4 * D * D + 6 * D;
}

/** A head's GEMM weights: the attention's in (q|k|v) and out projections. */
export function headGemmParams(t: TextConfig): number {
  return 4 * t.hidden * t.hidden;
}

/** KV-cache bytes per token in bf16: layers x (K and V) x kvHeads x headDim x 2 B (57,344 = 56 KiB for the 7B). */
export function kvBytesPerToken(t: TextConfig, bytesPerValue = 2): number {
  return t.layers * 2 * t.kvHeads * t.headDim * bytesPerValue;
}

const VISION_7B: VisionConfig = {
  depth: 32, hidden: 1280, heads: 16, intermediate: 3420, outHidden: 3584, patch: 14, temporalPatch: 2, merge: 2,
  windowSize: 112, fullattBlocks: [7, 15, 23, 31], inChannels: 3, ropeTheta: 10000,
};

/** The released configs' shapes (model.md §1.3), so `vreflect plan --model 7b` works before a download. */
export const PRESETS: Record<string, ModelShape> = {
  '7b': {
    name: 'Qwen2.5-VL-7B',
    text: {
      hidden: 3584, layers: 28, heads: 28, kvHeads: 4, headDim: 128, intermediate: 18944, vocab: 152064, rmsEps: 1e-6,
      ropeTheta: 1e6, mropeSection: [16, 24, 24], tieEmbeddings: false,
    },
    vision: VISION_7B,
  },
  '3b': {
    name: 'Qwen2.5-VL-3B',
    text: {
      hidden: 2048, layers: 36, heads: 16, kvHeads: 2, headDim: 128, intermediate: 11008, vocab: 151936, rmsEps: 1e-6,
      ropeTheta: 1e6, mropeSection: [16, 24, 24], tieEmbeddings: true,
    },
    vision: { ...VISION_7B, outHidden: 2048 },
  },
};
