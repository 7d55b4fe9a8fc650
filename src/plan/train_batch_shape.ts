// The largest micro-batch the training flags allow, as both memory plans count it (the GPU plan and
// src/train/memory_plan.ts): packing -> up to 4 x 4096 tokens; else batch x (image tokens + 512 text tokens).
export interface MicroBatchShape {
  tokens: number;
  visualTokens: number;
}

export const PACK_TOKENS = 4 * 4096;
export const TEXT_TOKENS_PER_SAMPLE = 512;

export function largestMicroBatch(o: { packing: boolean; perDeviceBatchSize: number; imageMaxPixels: number }): MicroBatchShape {
  const imageTokens = Math.floor(o.imageMaxPixels / (28 * 28));
  const tokens = o.packing ? PACK_TOKENS : o.perDeviceBatchSize * (imageTokens + TEXT_TOKENS_PER_SAMPLE);
  const visualTokens = Math.min(tokens, (o.packing ? 4 : o.perDeviceBatchSize) * imageTokens);
  return { tokens, visualTokens };
}
