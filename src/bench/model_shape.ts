// The Qwen2.5-VL-7B shape (docs/model.md §1.1, §2.3) with fewer layers: its config.json, the tensor list in the
// released (legacy, flat) naming, and the arithmetic the report needs (parameters, prefill FLOPs, decode bytes).
// Real layer widths keep every GEMM the size it has in the 7B, so per-layer speed carries over.

export interface Qwen7BShape {
  llmLayers: number;
  vitLayers: number;
  /** ViT blocks with full attention; the 7B has one every 8 blocks ([7,15,23,31]). */
  fullattBlocks: number[];
}

// Widths of the released 7B (model.md §1.1); only the layer counts vary.
export const QWEN7B = {
  hidden: 3584,
  intermediate: 18944,
  heads: 28,
  kvHeads: 4,
  headDim: 128,
  vocab: 152064,
  vitHidden: 1280,
  vitIntermediate: 3420,
  vitHeads: 16,
  vitHeadDim: 80,
  patch: 14,
  temporalPatch: 2,
  merge: 2,
  windowSize: 112,
  inChans: 3,
} as const;

/** The released full model: 28 LLM layers, 32 ViT blocks. */
export const FULL_7B: Qwen7BShape = { llmLayers: 28, vitLayers: 32, fullattBlocks: [7, 15, 23, 31] };

/** The benchmark default: 4 + 4 layers, the last ViT block full-attention (the 7B's 7:1 window:full mix, rounded). */
export function benchShape(llmLayers = 4, vitLayers = 4): Qwen7BShape {
  if (!Number.isInteger(llmLayers) || llmLayers < 1) throw new Error(`LLM layer count must be an integer >= 1, got ${llmLayers}`);
  if (!Number.isInteger(vitLayers) || vitLayers < 1) throw new Error(`ViT layer count must be an integer >= 1, got ${vitLayers}`);
  // Every 8th block as in the 7B, and always the last one, so at least one full-attention block runs.
  const full = new Set<number>();
  for (let i = 7; i < vitLayers; i += 8) full.add(i);
  full.add(vitLayers - 1);
  return { llmLayers, vitLayers, fullattBlocks: [...full].sort((a, b) => a - b) };
}

/** config.json in the released flat layout (model.md §1.1), layer counts from `shape`. */
export function configJson(shape: Qwen7BShape): Record<string, unknown> {
  const m = QWEN7B;
  return {
    architectures: ['Qwen2_5_VLForConditionalGeneration'],
    attention_dropout: 0.0,
    bos_token_id: 151643,
    eos_token_id: 151645,
    vision_start_token_id: 151652,
    vision_end_token_id: 151653,
    vision_token_id: 151654,
    image_token_id: 151655,
    video_token_id: 151656,
    lvr_start_id: 151665,
    lvr_id: 151666,
    lvr_latent_end_id: 151667,
    lvr_end_id: 151668,
    hidden_act: 'silu',
    hidden_size: m.hidden,
    initializer_range: 0.02,
    intermediate_size: m.intermediate,
    max_position_embeddings: 128000,
    max_window_layers: shape.llmLayers,
    model_type: 'qwen2_5_vl',
    num_attention_heads: m.heads,
    num_hidden_layers: shape.llmLayers,
    num_key_value_heads: m.kvHeads,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    sliding_window: 32768,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
    transformers_version: '4.41.2',
    use_cache: true,
    use_sliding_window: false,
    vision_config: {
      depth: shape.vitLayers,
      hidden_act: 'silu',
      hidden_size: m.vitHidden,
      intermediate_size: m.vitIntermediate,
      num_heads: m.vitHeads,
      in_chans: m.inChans,
      out_hidden_size: m.hidden,
      patch_size: m.patch,
      spatial_merge_size: m.merge,
      spatial_patch_size: m.patch,
      window_size: m.windowSize,
      fullatt_block_indexes: shape.fullattBlocks,
      tokens_per_second: 2,
      temporal_patch_size: m.temporalPatch,
    },
    rope_scaling: { type: 'mrope', mrope_section: [16, 24, 24] },
    vocab_size: m.vocab,
  };
}

/** What a weight's random values look like: a normal with this std, or a constant (norm weights = 1). */
export type Init = { kind: 'normal'; std: number } | { kind: 'ones' };

export interface TensorSpec {
  name: string;
  shape: number[];
  init: Init;
  /** Rows of a [rows, cols] tensor forced to zero (lm_head rows of the stop tokens, see zeroRows below). */
  zeroRows?: number[];
}

const W: Init = { kind: 'normal', std: 0.02 };
const ONES: Init = { kind: 'ones' };

// Random weights can emit <|endoftext|> or <|im_end|> at any step and end decoding early; a zero lm_head row
// gives those ids a logit of exactly 0, far below the maximum over 152,064 random logits, so every run decodes
// the requested number of tokens in both engines without an "ignore eos" option.
export const STOP_TOKEN_IDS = [151643, 151645];

/** Every tensor of the checkpoint, released names, [out, in] Linear layout (model.md §2.3). */
export function tensorSpecs(shape: Qwen7BShape): TensorSpec[] {
  const m = QWEN7B;
  const t: TensorSpec[] = [];
  const add = (name: string, dims: number[], init: Init, zeroRows?: number[]) => t.push({ name, shape: dims, init, zeroRows });
  add('visual.patch_embed.proj.weight', [m.vitHidden, m.inChans, m.temporalPatch, m.patch, m.patch], W);
  for (let i = 0; i < shape.vitLayers; i++) {
    const p = `visual.blocks.${i}.`;
    add(p + 'norm1.weight', [m.vitHidden], ONES);
    add(p + 'norm2.weight', [m.vitHidden], ONES);
    add(p + 'attn.qkv.weight', [3 * m.vitHidden, m.vitHidden], W);
    add(p + 'attn.qkv.bias', [3 * m.vitHidden], W);
    add(p + 'attn.proj.weight', [m.vitHidden, m.vitHidden], W);
    add(p + 'attn.proj.bias', [m.vitHidden], W);
    for (const g of ['gate_proj', 'up_proj']) {
      add(p + `mlp.${g}.weight`, [m.vitIntermediate, m.vitHidden], W);
      add(p + `mlp.${g}.bias`, [m.vitIntermediate], W);
    }
    add(p + 'mlp.down_proj.weight', [m.vitHidden, m.vitIntermediate], W);
    add(p + 'mlp.down_proj.bias', [m.vitHidden], W);
  }
  const mergeIn = m.vitHidden * m.merge * m.merge;
  add('visual.merger.ln_q.weight', [m.vitHidden], ONES);
  add('visual.merger.mlp.0.weight', [mergeIn, mergeIn], W);
  add('visual.merger.mlp.0.bias', [mergeIn], W);
  add('visual.merger.mlp.2.weight', [m.hidden, mergeIn], W);
  add('visual.merger.mlp.2.bias', [m.hidden], W);

  const kv = m.kvHeads * m.headDim;
  add('model.embed_tokens.weight', [m.vocab, m.hidden], W);
  for (let i = 0; i < shape.llmLayers; i++) {
    const p = `model.layers.${i}.`;
    add(p + 'input_layernorm.weight', [m.hidden], ONES);
    add(p + 'post_attention_layernorm.weight', [m.hidden], ONES);
    add(p + 'self_attn.q_proj.weight', [m.hidden, m.hidden], W);
    add(p + 'self_attn.q_proj.bias', [m.hidden], W);
    add(p + 'self_attn.k_proj.weight', [kv, m.hidden], W);
    add(p + 'self_attn.k_proj.bias', [kv], W);
    add(p + 'self_attn.v_proj.weight', [kv, m.hidden], W);
    add(p + 'self_attn.v_proj.bias', [kv], W);
    add(p + 'self_attn.o_proj.weight', [m.hidden, m.hidden], W);
    add(p + 'mlp.gate_proj.weight', [m.intermediate, m.hidden], W);
    add(p + 'mlp.up_proj.weight', [m.intermediate, m.hidden], W);
    add(p + 'mlp.down_proj.weight', [m.hidden, m.intermediate], W);
  }
  add('model.norm.weight', [m.hidden], ONES);
  add('lm_head.weight', [m.vocab, m.hidden], W, STOP_TOKEN_IDS);
  return t;
}

export const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

export function parameterCount(shape: Qwen7BShape): number {
  return tensorSpecs(shape).reduce((s, t) => s + numel(t.shape), 0);
}

/**
 * Parameters read from memory per decoded token: every LLM layer and the final norm, lm_head, and one
 * embedding row (the ViT does not run while decoding).
 */
export function decodeParamsPerToken(shape: Qwen7BShape): number {
  let n = 0;
  for (const t of tensorSpecs(shape)) {
    if (t.name.startsWith('model.layers.') || t.name === 'model.norm.weight' || t.name === 'lm_head.weight') n += numel(t.shape);
  }
  return n + QWEN7B.hidden;
}

export interface ImageGridThw {
  t: number;
  h: number; // patches
  w: number;
}

/** Multiply-adds of one prefill, split by part (2 FLOP per multiply-add; norms, RoPE, softmax ignored, as model.md §9.4). */
export interface PrefillCost {
  vitDenseMac: number;
  vitAttnMac: number;
  mergerMac: number;
  llmDenseMac: number;
  llmAttnMac: number;
  lmHeadMac: number;
  totalFlop: number;
}

/** Patches per ViT window (model.md §4.3): windows of window_size px tile the merged grid, edge windows are smaller. */
function windowSizes(grid: ImageGridThw): number[] {
  const m = QWEN7B;
  const wm = m.windowSize / m.patch / m.merge; // window side in merged tokens (4)
  const hm = grid.h / m.merge;
  const wmTokens = grid.w / m.merge;
  const sizes: number[] = [];
  for (let t = 0; t < grid.t; t++)
    for (let r = 0; r < hm; r += wm)
      for (let c = 0; c < wmTokens; c += wm) sizes.push(Math.min(wm, hm - r) * Math.min(wm, wmTokens - c) * m.merge * m.merge);
  return sizes;
}

/**
 * Cost of prefilling `promptTokens` tokens with one image of `grid` patches: ViT (patch embed, blocks with
 * window or full attention, merger), the LLM over the whole prompt (causal attention), lm_head on the last
 * position only (what both engines compute when not asked for all logits).
 */
export function prefillCost(shape: Qwen7BShape, grid: ImageGridThw | undefined, promptTokens: number): PrefillCost {
  const m = QWEN7B;
  let vitDenseMac = 0;
  let vitAttnMac = 0;
  let mergerMac = 0;
  if (grid) {
    const np = grid.t * grid.h * grid.w;
    const nt = np / (m.merge * m.merge);
    const patchDim = m.inChans * m.temporalPatch * m.patch * m.patch;
    const perBlock = m.vitHidden * 3 * m.vitHidden + m.vitHidden * m.vitHidden + 3 * m.vitHidden * m.vitIntermediate;
    vitDenseMac = np * patchDim * m.vitHidden + shape.vitLayers * np * perBlock;
    const windows = windowSizes(grid);
    const full = new Set(shape.fullattBlocks);
    for (let b = 0; b < shape.vitLayers; b++) {
      // QK^T and AV: 2 * len^2 * hidden per attention span (all heads together).
      const spans = full.has(b) ? [np] : windows;
      for (const s of spans) vitAttnMac += 2 * s * s * m.vitHidden;
    }
    const mergeIn = m.vitHidden * m.merge * m.merge;
    mergerMac = nt * (mergeIn * mergeIn + mergeIn * m.hidden);
  }
  const kv = m.kvHeads * m.headDim;
  const perToken = m.hidden * (m.hidden + 2 * kv) + m.hidden * m.hidden + 3 * m.hidden * m.intermediate;
  const llmDenseMac = shape.llmLayers * promptTokens * perToken;
  // Causal: query i sees i+1 keys; QK^T and AV over all 28 query heads of width 128.
  const llmAttnMac = shape.llmLayers * 2 * m.heads * m.headDim * ((promptTokens * (promptTokens + 1)) / 2);
  const lmHeadMac = m.hidden * m.vocab;
  const totalMac = vitDenseMac + vitAttnMac + mergerMac + llmDenseMac + llmAttnMac + lmHeadMac;
  return { vitDenseMac, vitAttnMac, mergerMac, llmDenseMac, llmAttnMac, lmHeadMac, totalFlop: 2 * totalMac };
}

/** Bytes of the KV cache at `contextTokens` tokens: K and V, every layer, kv_heads x head_dim values each. */
export function kvCacheBytes(shape: Qwen7BShape, contextTokens: number, bytesPerValue: number): number {
  return shape.llmLayers * 2 * QWEN7B.kvHeads * QWEN7B.headDim * contextTokens * bytesPerValue;
}
