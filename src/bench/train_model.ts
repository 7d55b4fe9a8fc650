// The model `vreflect bench train` trains: Qwen2.5-VL-7B layer widths with few layers and a truncated vocabulary.
// Full fp32 master weights + AdamW moments cost 16 B per trainable parameter; the 4+4-layer inference benchmark
// model has ~2.1e9 trainable parameters (1.09e9 of them in embed_tokens + lm_head at 152,064 rows), ~35 GB, more
// than a 23 GiB machine. Every GEMM of a decoder layer keeps its 7B size here; only the layer count and the
// vocabulary rows shrink. The special tokens (151643..151668 in Qwen's tokenizer) are remapped to the top of the
// truncated vocabulary, so config.json's image / vision-start / LVR ids stay inside it.
import { benchShape, configJson, numel, Qwen7BShape, QWEN7B, tensorSpecs, TensorSpec } from './model_shape';

export interface TrainBenchShape {
  llmLayers: number;
  vitLayers: number;
  /** rows of embed_tokens and lm_head */
  vocab: number;
}

export const DEFAULT_TRAIN_SHAPE: TrainBenchShape = { llmLayers: 2, vitLayers: 4, vocab: 16384 };

/** First and last of Qwen's special-token ids (<|endoftext|> .. <|lvr_end|>): 26 ids, remapped as one block. */
const FIRST_SPECIAL = 151643;
const LAST_SPECIAL = 151668;
/** The remapped block starts this many rows below the top of the vocabulary. */
const SPECIAL_BLOCK = 32;

export function checkTrainShape(s: TrainBenchShape): void {
  if (!Number.isInteger(s.llmLayers) || s.llmLayers < 1 || s.llmLayers > 28) throw new Error(`LLM layer count must be an integer in [1, 28], got ${s.llmLayers}`);
  if (!Number.isInteger(s.vitLayers) || s.vitLayers < 1 || s.vitLayers > 32) throw new Error(`ViT layer count must be an integer in [1, 32], got ${s.vitLayers}`);
  if (!Number.isInteger(s.vocab) || s.vocab < 1024 || s.vocab > QWEN7B.vocab)
    throw new Error(`vocabulary size must be an integer in [1024, ${QWEN7B.vocab}], got ${s.vocab}`);
}

/** Where Qwen's special id `id` lives in the truncated vocabulary (ids below the special block are kept). */
export function remapTokenId(id: number, vocab: number): number {
  if (id >= FIRST_SPECIAL && id <= LAST_SPECIAL) return vocab - SPECIAL_BLOCK + (id - FIRST_SPECIAL);
  if (id < 0 || id >= vocab - SPECIAL_BLOCK) throw new Error(`token id ${id} has no place in a ${vocab}-row vocabulary`);
  return id;
}

/** Ordinary text ids are drawn from [0, textIdLimit). */
export const textIdLimit = (vocab: number): number => vocab - SPECIAL_BLOCK;

/** The special ids the synthetic batches use, after remapping (Qwen2.5-VL + V-Reflection, model.md §7). */
export function trainSpecialIds(vocab: number) {
  const r = (id: number) => remapTokenId(id, vocab);
  return {
    endOfText: r(151643),
    imStart: r(151644),
    imEnd: r(151645),
    visionStart: r(151652),
    visionEnd: r(151653),
    imagePad: r(151655),
    videoPad: r(151656),
    lvrStart: r(151665),
    lvr: r(151666),
    lvrLatentEnd: r(151667),
    lvrEnd: r(151668),
  };
}

export const qwenShapeOf = (s: TrainBenchShape): Qwen7BShape => benchShape(s.llmLayers, s.vitLayers);

/** config.json: the 7B widths, these layer counts, vocab_size and every token id remapped. */
export function trainConfigJson(s: TrainBenchShape): Record<string, unknown> {
  checkTrainShape(s);
  const c = configJson(qwenShapeOf(s));
  const ids = trainSpecialIds(s.vocab);
  return {
    ...c,
    vocab_size: s.vocab,
    bos_token_id: ids.endOfText,
    eos_token_id: ids.imEnd,
    vision_start_token_id: ids.visionStart,
    vision_end_token_id: ids.visionEnd,
    vision_token_id: remapTokenId(151654, s.vocab),
    image_token_id: ids.imagePad,
    video_token_id: ids.videoPad,
    lvr_start_id: ids.lvrStart,
    lvr_id: ids.lvr,
    lvr_latent_end_id: ids.lvrLatentEnd,
    lvr_end_id: ids.lvrEnd,
  };
}

/** The tensors: those of the 7B shape with embed_tokens / lm_head cut to `vocab` rows (no zeroed rows). */
export function trainTensorSpecs(s: TrainBenchShape): TensorSpec[] {
  checkTrainShape(s);
  return tensorSpecs(qwenShapeOf(s)).map((t) =>
    t.name === 'model.embed_tokens.weight' || t.name === 'lm_head.weight' ? { name: t.name, shape: [s.vocab, QWEN7B.hidden], init: t.init } : t,
  );
}

/** BCM parameters (method.md §6.1): queries [8, D], in_proj [3D, D] + [3D], out_proj [D, D] + [D], LayerNorm 2 x [D]. */
export function bcmParameterCount(latentCount: number): number {
  const D = QWEN7B.hidden;
  return latentCount * D + 3 * D * D + 3 * D + D * D + D + 2 * D;
}

export interface TrainParamCounts {
  /** everything trained: LLM (embeddings, layers, final norm, lm_head) + BCM */
  trainable: number;
  /** trained and used as GEMM weights per token: decoder-layer projections (the 6N of the FLOP count) */
  layerGemm: number;
  embedding: number;
  lmHead: number;
  bcm: number;
  /** the vision tower and merger (frozen) */
  frozen: number;
}

export function trainParamCounts(s: TrainBenchShape, latentCount: number): TrainParamCounts {
  let layerGemm = 0, llm = 0, frozen = 0;
  for (const t of trainTensorSpecs(s)) {
    const n = numel(t.shape);
    if (t.name.startsWith('visual.')) frozen += n;
    else llm += n;
    if (t.name.startsWith('model.layers.') && t.name.endsWith('_proj.weight')) layerGemm += n;
  }
  const bcm = bcmParameterCount(latentCount);
  const table = s.vocab * QWEN7B.hidden;
  return { trainable: llm + bcm, layerGemm, embedding: table, lmHead: table, bcm, frozen };
}
