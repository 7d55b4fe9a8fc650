// A tiny random Qwen2.5-VL checkpoint in the released flat layout (model.md §1.1): config.json with the four
// lvr_* ids, fp32 model.safetensors, tokenizer files (a BPE trained on the demo corpus), preprocessor and
// generation configs. Same architecture as the 7B (windowed + full-attention ViT blocks, 2x2 merger, GQA LLM
// with mRoPE), only narrow, so a few hundred training steps take a minute or two on two CPU cores.
import * as fs from 'fs';
import * as path from 'path';

import { loadModelConfig } from '../model/config';
import { TensorData, writeSafetensors } from '../model/safetensors_writer';
import { expectedTensorShapes } from '../model/tensor_names';
import { mulberry32 } from '../bench/random_weights';
import type { BpeModel } from './bpe';
import { addedTokenIds, writeJson, writeTokenizerFiles } from './tokenizer_files';

export interface TinyShape {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vitHidden: number;
  vitDepth: number;
  vitHeads: number;
  vitIntermediate: number;
}

/** The demo's default widths: 1.16 M parameters, head size 32 in both towers. */
export const DEMO_SHAPE: TinyShape = {
  hidden: 128, layers: 4, heads: 4, kvHeads: 2, intermediate: 384,
  vitHidden: 64, vitDepth: 2, vitHeads: 2, vitIntermediate: 128,
};

/** Processor limits of the demo checkpoint: images of 4..144 merged tokens of 28 x 28 px. */
export const DEMO_MIN_PIXELS = 4 * 28 * 28;
export const DEMO_MAX_PIXELS = 144 * 28 * 28;

/**
 * rope_theta 10 instead of Qwen's 1e6. mRoPE gives the width axis the lowest frequencies (the last third of the
 * head); with head size 32 and theta 1e6 those turn by under 0.001 rad per token, so a 6-token-wide picture
 * has no left and right for the LLM, and "left or right?" stays at chance however long the demo trains
 * (measured: 55% after 1000 steps, against 100% with theta 10).
 */
export const DEMO_ROPE_THETA = 10;

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** mRoPE sections (t, h, w) summing to head_dim / 2, in the 7B's 16:24:24 proportions. */
export function mropeSection(headDim: number): [number, number, number] {
  const half = headDim / 2;
  const t = Math.round(half / 4);
  const h = Math.floor((half - t) / 2);
  return [t, h, half - t - h];
}

export function configJson(s: TinyShape, ids: Record<string, number>, vocabSize: number): Record<string, unknown> {
  return {
    architectures: ['Qwen2_5_VLForConditionalGeneration'],
    attention_dropout: 0.0,
    model_type: 'qwen2_5_vl',
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    rms_norm_eps: 1e-6,
    rope_theta: DEMO_ROPE_THETA,
    vocab_size: vocabSize,
    hidden_act: 'silu',
    max_position_embeddings: 32768,
    max_window_layers: s.layers,
    tie_word_embeddings: false,
    bos_token_id: ids['<|endoftext|>'],
    eos_token_id: ids['<|im_end|>'],
    initializer_range: 0.02,
    sliding_window: 32768,
    use_sliding_window: false,
    use_cache: true,
    torch_dtype: 'float32',
    image_token_id: ids['<|image_pad|>'],
    video_token_id: ids['<|video_pad|>'],
    vision_start_token_id: ids['<|vision_start|>'],
    vision_end_token_id: ids['<|vision_end|>'],
    vision_token_id: ids['<|vision_pad|>'],
    lvr_start_id: ids['<|lvr_start|>'],
    lvr_id: ids['<|lvr|>'],
    lvr_latent_end_id: ids['<|lvr_latent_end|>'],
    lvr_end_id: ids['<|lvr_end|>'],
    vision_config: {
      depth: s.vitDepth,
      hidden_size: s.vitHidden,
      num_heads: s.vitHeads,
      intermediate_size: s.vitIntermediate,
      out_hidden_size: s.hidden,
      window_size: 112,
      // the 7B's mix: windowed blocks with a full-attention block last
      fullatt_block_indexes: [s.vitDepth - 1],
      patch_size: 14,
      temporal_patch_size: 2,
      spatial_merge_size: 2,
      hidden_act: 'silu',
      tokens_per_second: 2,
      in_chans: 3,
      spatial_patch_size: 14,
    },
    rope_scaling: { type: 'mrope', mrope_section: mropeSection(s.hidden / s.heads) },
  };
}

export function preprocessorConfigJson(): Record<string, unknown> {
  return {
    processor_class: 'Qwen2_5_VLProcessor',
    image_processor_type: 'Qwen2VLImageProcessor',
    do_convert_rgb: true, do_resize: true, do_rescale: true, do_normalize: true,
    resample: 3, rescale_factor: 1 / 255,
    image_mean: CLIP_MEAN, image_std: CLIP_STD,
    min_pixels: DEMO_MIN_PIXELS, max_pixels: DEMO_MAX_PIXELS,
    size: { shortest_edge: DEMO_MIN_PIXELS, longest_edge: DEMO_MAX_PIXELS },
    patch_size: 14, temporal_patch_size: 2, merge_size: 2,
  };
}

/** Qwen2.5-VL-Instruct's generation settings (greedy in practice, repetition penalty 1.05). */
export function generationConfigJson(ids: Record<string, number>): Record<string, unknown> {
  return {
    bos_token_id: ids['<|endoftext|>'], pad_token_id: ids['<|endoftext|>'], do_sample: true,
    eos_token_id: [ids['<|im_end|>'], ids['<|endoftext|>']], repetition_penalty: 1.05, temperature: 1e-6,
  };
}

/** Standard normal samples (Box-Muller over mulberry32: fast enough for millions of values). */
class Normal {
  private spare: number | undefined;
  private readonly rng: () => number;
  constructor(seed: number) {
    this.rng = mulberry32(seed);
  }
  next(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u = 1 - this.rng(); // (0, 1]: log(u) is finite
    const v = this.rng();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

/**
 * Initial values. The LLM gets transformers' init (normal, std = initializer_range 0.02; norms 1, biases 0): it
 * is what training starts from. The vision tower stays frozen during training, so it stands in for a pretrained
 * encoder: its features must keep what the picture shows. A random deep tower does not (attention averages
 * each window and the GELU adds a shared offset, so every token ends up nearly parallel), hence residual
 * branches scaled down (each block is close to the identity: the features are a random linear view of the
 * pixels) and a merger kept in the GELU's near-linear range.
 */
const VISION_GAIN: Array<[RegExp, number]> = [
  [/^visual\.blocks\.\d+\.(attn\.proj|mlp\.down_proj)\.weight$/, 0.1],
  [/^visual\.merger\.mlp\.0\.weight$/, 0.3],
  [/^visual\.merger\.mlp\.2\.weight$/, 3],
];

function initTensor(name: string, shape: number[], normal: Normal): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const isNorm = /(norm1|norm2|ln_q|layernorm|norm)\.weight$/.test(name);
  if (isNorm) return out.fill(1);
  if (name.endsWith('.bias')) return out;
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const gain = VISION_GAIN.find(([re]) => re.test(name))?.[1] ?? 1;
  const std = name.startsWith('visual.') ? gain / Math.sqrt(fanIn) : 0.02;
  for (let i = 0; i < n; i++) out[i] = std * normal.next();
  return out;
}

export interface TinyModel {
  dir: string;
  parameters: number;
  vocabSize: number;
}

/** Writes the checkpoint folder `dir` (created; existing files of the same names are replaced). */
export function writeTinyModel(dir: string, bpe: BpeModel, shape: TinyShape, seed: number): TinyModel {
  fs.mkdirSync(dir, { recursive: true });
  const ids = addedTokenIds(bpe);
  const tokenizerSize = bpe.vocab.size + Object.keys(ids).length;
  const vocabSize = Math.ceil(tokenizerSize / 64) * 64; // padding rows the tokenizer never produces, like Qwen's
  writeJson(path.join(dir, 'config.json'), configJson(shape, ids, vocabSize));
  writeJson(path.join(dir, 'preprocessor_config.json'), preprocessorConfigJson());
  writeJson(path.join(dir, 'generation_config.json'), generationConfigJson(ids));
  writeTokenizerFiles(dir, bpe);

  const cfg = loadModelConfig(dir);
  const normal = new Normal(seed);
  const tensors = new Map<string, TensorData>();
  let parameters = 0;
  // sorted names: the values depend only on the seed, never on Map order
  for (const [name, shp] of [...expectedTensorShapes(cfg)].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    tensors.set(name, { dtype: 'F32', shape: shp, data: initTensor(name, shp, normal) });
    parameters += shp.reduce((a, b) => a * b, 1);
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  return { dir, parameters, vocabSize };
}
