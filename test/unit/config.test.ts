// config.json in both layouts (model.md §1.1-1.5), preprocessor_config.json and generation_config.json.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { loadModelConfig } from '../../src/model/config';
import { loadGenerationConfig } from '../../src/model/generation_config';
import { loadPreprocessorConfig } from '../../src/model/preprocessor_config';

const GOLDEN_MODELS = path.join(__dirname, '../golden/models');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-cfg-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

let n = 0;
function dirWith(files: Record<string, unknown>): string {
  const dir = path.join(tmpRoot, String(n++));
  fs.mkdirSync(dir);
  for (const [name, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), typeof v === 'string' ? v : JSON.stringify(v, null, 1));
  return dir;
}

/** The released Qwen2.5-VL-7B-Instruct config.json (model.md §1.1), flat layout. */
function released7b(): Record<string, any> {
  return {
    architectures: ['Qwen2_5_VLForConditionalGeneration'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645,
    vision_start_token_id: 151652, vision_end_token_id: 151653, vision_token_id: 151654, image_token_id: 151655, video_token_id: 151656,
    hidden_act: 'silu', hidden_size: 3584, initializer_range: 0.02, intermediate_size: 18944, max_position_embeddings: 128000,
    max_window_layers: 28, model_type: 'qwen2_5_vl', num_attention_heads: 28, num_hidden_layers: 28, num_key_value_heads: 4,
    rms_norm_eps: 1e-6, rope_theta: 1000000.0, sliding_window: 32768, tie_word_embeddings: false, torch_dtype: 'bfloat16',
    transformers_version: '4.41.2', use_cache: true, use_sliding_window: false,
    vision_config: {
      depth: 32, hidden_act: 'silu', hidden_size: 1280, intermediate_size: 3420, num_heads: 16, in_chans: 3, out_hidden_size: 3584,
      patch_size: 14, spatial_merge_size: 2, spatial_patch_size: 14, window_size: 112, fullatt_block_indexes: [7, 15, 23, 31],
      tokens_per_second: 2, temporal_patch_size: 2,
    },
    rope_scaling: { type: 'mrope', mrope_section: [16, 24, 24] },
    vocab_size: 152064,
  };
}

/** The same model as transformers 5.x save_pretrained writes it (model.md §1.3): nested. */
function nested7b(): Record<string, any> {
  const f = released7b();
  const textKeys = ['hidden_act', 'hidden_size', 'intermediate_size', 'max_position_embeddings', 'max_window_layers', 'num_attention_heads',
    'num_hidden_layers', 'num_key_value_heads', 'rms_norm_eps', 'vocab_size', 'bos_token_id', 'eos_token_id', 'sliding_window', 'use_sliding_window'];
  const text: Record<string, any> = { model_type: 'qwen2_5_vl_text', layer_types: new Array(28).fill('full_attention') };
  for (const k of textKeys) text[k] = f[k];
  text.sliding_window = null;
  text.rope_parameters = { mrope_section: [16, 24, 24], rope_theta: 1000000.0, rope_type: 'default', type: 'mrope' };
  const { in_chans, spatial_patch_size, ...vision } = f.vision_config;
  return {
    architectures: f.architectures, model_type: 'qwen2_5_vl', dtype: 'bfloat16', image_token_id: 151655, video_token_id: 151656,
    vision_start_token_id: 151652, vision_end_token_id: 151653, vision_token_id: 151654, tie_word_embeddings: false,
    text_config: text,
    vision_config: { ...vision, model_type: 'qwen2_5_vl_vision', in_channels: in_chans, in_chans, rope_parameters: { rope_theta: 10000.0, rope_type: 'axial' } },
  };
}

const TEXT_7B = {
  hidden: 3584, layers: 28, heads: 28, kvHeads: 4, headDim: 128, intermediate: 18944, vocab: 152064, rmsEps: 1e-6, ropeTheta: 1e6,
  mropeSection: [16, 24, 24], tieEmbeddings: false, maxPositionEmbeddings: 128000,
};
const VISION_7B = {
  depth: 32, hidden: 1280, heads: 16, intermediate: 3420, outHidden: 3584, patch: 14, temporalPatch: 2, merge: 2, windowSize: 112,
  fullattBlocks: [7, 15, 23, 31], inChannels: 3, ropeTheta: 10000,
};
const TOKENS_QWEN = { image: 151655, video: 151656, visionStart: 151652, visionEnd: 151653 };

describe('config.json layouts', () => {
  test('released 7B (flat, transformers 4.41)', () => {
    const c = loadModelConfig(dirWith({ 'config.json': released7b() }));
    expect(c.layout).toBe('flat');
    expect(c.text).toEqual(TEXT_7B);
    expect(c.vision).toEqual(VISION_7B);
    expect(c.tokens).toEqual(TOKENS_QWEN);
    expect(c.lvr).toEqual({});
    expect(c.preprocess).toMatchObject({ minPixels: 3136, maxPixels: 12845056, source: 'defaults' });
  });

  test('transformers 5.x nested layout of the same model', () => {
    const c = loadModelConfig(dirWith({ 'config.json': nested7b() }));
    expect(c.layout).toBe('nested');
    expect(c.text).toEqual(TEXT_7B);
    expect(c.vision).toEqual(VISION_7B);
    expect(c.tokens).toEqual(TOKENS_QWEN);
  });

  test('transformers 4.5x hybrid (flat + text_config copy, rope_scaling rewritten)', () => {
    const f = released7b();
    f.rope_scaling = { mrope_section: [16, 24, 24], rope_type: 'default', type: 'default', rope_theta: 1000000.0 };
    f.text_config = { ...nested7b().text_config, rope_scaling: f.rope_scaling, rope_parameters: undefined, rope_theta: 1000000.0 };
    const c = loadModelConfig(dirWith({ 'config.json': f }));
    expect(c.text).toEqual(TEXT_7B);
  });

  test('3B: tied embeddings from the top level or text_config', () => {
    const f = released7b();
    Object.assign(f, { hidden_size: 2048, num_hidden_layers: 36, num_attention_heads: 16, num_key_value_heads: 2, intermediate_size: 11008, vocab_size: 151936, tie_word_embeddings: true });
    f.vision_config.out_hidden_size = 2048;
    expect(loadModelConfig(dirWith({ 'config.json': f })).text).toMatchObject({ hidden: 2048, headDim: 128, tieEmbeddings: true, vocab: 151936 });
    const nz = nested7b();
    delete nz.tie_word_embeddings;
    nz.text_config.tie_word_embeddings = true;
    expect(loadModelConfig(dirWith({ 'config.json': nz })).text.tieEmbeddings).toBe(true);
  });

  test('V-Reflection lvr ids and module switches', () => {
    const f = { ...released7b(), lvr_start_id: 151665, lvr_id: 151666, lvr_latent_end_id: 151667, lvr_end_id: 151668, use_box_feature_resampler: true };
    const c = loadModelConfig(dirWith({ 'config.json': f }));
    expect(c.lvr).toEqual({ start: 151665, lvr: 151666, latentEnd: 151667, end: 151668 });
    expect(c.useBoxFeatureResampler).toBe(true);
    expect(c.useStage2Distillation).toBe(false);
    expect(c.raw.lvr_id).toBe(151666);
  });

  test('golden tiny checkpoints (written by transformers 4.x-style and 5.18)', () => {
    const flat = loadModelConfig(path.join(GOLDEN_MODELS, 'tiny-flat'));
    expect(flat.layout).toBe('flat');
    expect(flat.text).toEqual({ hidden: 64, layers: 3, heads: 4, kvHeads: 2, headDim: 16, intermediate: 128, vocab: 416, rmsEps: 1e-6,
      ropeTheta: 1e6, mropeSection: [2, 3, 3], tieEmbeddings: false, maxPositionEmbeddings: 32768 });
    expect(flat.vision).toEqual({ depth: 4, hidden: 32, heads: 2, intermediate: 48, outHidden: 64, patch: 14, temporalPatch: 2, merge: 2,
      windowSize: 112, fullattBlocks: [1, 3], inChannels: 3, ropeTheta: 10000 });
    expect(flat.tokens).toEqual({ image: 372, video: 373, visionStart: 369, visionEnd: 370 });
    expect(flat.lvr).toEqual({ start: 374, lvr: 375, latentEnd: 376, end: 377 });
    expect(flat.preprocess).toMatchObject({ minPixels: 6272, maxPixels: 75264, source: 'file' });
    const nested = loadModelConfig(path.join(GOLDEN_MODELS, 'tiny-nested'));
    expect(nested.layout).toBe('nested');
    expect(nested.text).toMatchObject({ kvHeads: 4, tieEmbeddings: true, mropeSection: [2, 3, 3], ropeTheta: 1e6 });
    expect(nested.vision).toMatchObject({ depth: 3, fullattBlocks: [2], inChannels: 3 });
    expect(nested.lvr.start).toBe(374);
  });
});

describe('config.json errors name the field and the file', () => {
  const cases: Array<[string, (c: Record<string, any>) => void, RegExp]> = [
    ['missing hidden_size', (c) => delete c.hidden_size, /config\.json: missing required field hidden_size/],
    ['missing rms_norm_eps (no 1e-5 default)', (c) => delete c.rms_norm_eps, /missing required field rms_norm_eps/],
    ['missing rope_theta', (c) => delete c.rope_theta, /missing required field rope_theta/],
    ['missing mrope_section', (c) => delete c.rope_scaling, /missing required field rope_scaling\.mrope_section/],
    ['mrope_section not summing to head_dim/2', (c) => (c.rope_scaling.mrope_section = [16, 24, 16]), /sums to 56, expected head_dim\/2 = 64/],
    ['missing vision_config', (c) => delete c.vision_config, /missing required field vision_config/],
    ['missing vision depth', (c) => delete c.vision_config.depth, /missing required field vision_config\.depth/],
    ['full-attention block past the depth', (c) => (c.vision_config.fullatt_block_indexes = [7, 32]), /lists block 32, but depth is 32/],
    ['missing image_token_id', (c) => delete c.image_token_id, /missing required field image_token_id/],
    ['token id outside the vocabulary', (c) => (c.image_token_id = 152064), /image token id 152064 is outside the vocabulary/],
    ['non-integer layer count', (c) => (c.num_hidden_layers = 2.5), /num_hidden_layers must be an integer >= 1, got 2\.5/],
    ['heads not dividing hidden', (c) => (c.num_attention_heads = 27), /not divisible by num_attention_heads 27/],
    ['other model type', (c) => (c.model_type = 'qwen2_vl'), /model_type "qwen2_vl" is not supported/],
    ['sliding window', (c) => (c.use_sliding_window = true), /use_sliding_window true is not supported/],
    ['other activation', (c) => (c.hidden_act = 'gelu'), /hidden_act "gelu" is not supported/],
    ['yarn rope scaling', (c) => (c.rope_scaling.type = 'yarn'), /rope_type "yarn" is not supported/],
  ];
  test.each(cases)('%s', (_n, mutate, msg) => {
    const cfg = released7b();
    mutate(cfg);
    const dir = dirWith({ 'config.json': cfg });
    expect(() => loadModelConfig(dir)).toThrow(msg);
    expect(() => loadModelConfig(dir)).toThrow(path.join(dir, 'config.json'));
  });
  test('nested layout: the field is named with its sub-config', () => {
    const cfg = nested7b();
    cfg.text_config.num_key_value_heads = 0;
    expect(() => loadModelConfig(dirWith({ 'config.json': cfg }))).toThrow(/text_config\.num_key_value_heads must be an integer >= 1, got 0/);
  });
  test('missing or broken config.json', () => {
    const d = dirWith({});
    expect(() => loadModelConfig(d)).toThrow(`cannot read ${path.join(d, 'config.json')} (ENOENT)`);
    expect(() => loadModelConfig(dirWith({ 'config.json': '{"hidden_size": ' }))).toThrow(/config\.json is not valid JSON/);
    expect(() => loadModelConfig(dirWith({ 'config.json': '[1]' }))).toThrow(/config\.json does not hold a JSON object/);
  });
});

describe('preprocessor_config.json', () => {
  test('min_pixels / max_pixels keys', () => {
    expect(loadPreprocessorConfig(dirWith({ 'preprocessor_config.json': { min_pixels: 100352, max_pixels: 4014080 } })))
      .toMatchObject({ minPixels: 100352, maxPixels: 4014080, patch: 14, merge: 2, temporalPatch: 2, rescale: 1 / 255 });
  });
  test('transformers 5.x size.shortest_edge / longest_edge', () => {
    expect(loadPreprocessorConfig(dirWith({ 'preprocessor_config.json': { size: { shortest_edge: 6272, longest_edge: 75264 } } })))
      .toMatchObject({ minPixels: 6272, maxPixels: 75264 });
  });
  test('explicit keys win over size (transformers rule)', () => {
    expect(loadPreprocessorConfig(dirWith({ 'preprocessor_config.json': { min_pixels: 1000, size: { shortest_edge: 6272, longest_edge: 75264 } } })))
      .toMatchObject({ minPixels: 1000, maxPixels: 75264 });
  });
  test('absent file: released defaults', () => {
    expect(loadPreprocessorConfig(dirWith({}))).toEqual({
      minPixels: 3136, maxPixels: 12845056, patch: 14, merge: 2, temporalPatch: 2,
      mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711], rescale: 1 / 255, source: 'defaults',
    });
  });
  test('do_normalize / do_rescale false become identity constants', () => {
    expect(loadPreprocessorConfig(dirWith({ 'preprocessor_config.json': { do_normalize: false, do_rescale: false } })))
      .toMatchObject({ mean: [0, 0, 0], std: [1, 1, 1], rescale: 1 });
  });
  test('errors', () => {
    expect(() => loadPreprocessorConfig(dirWith({ 'preprocessor_config.json': { min_pixels: 5000, max_pixels: 4000 } }))).toThrow(/min_pixels 5000 exceeds max_pixels 4000/);
    expect(() => loadPreprocessorConfig(dirWith({ 'preprocessor_config.json': { resample: 2 } }))).toThrow(/resample 2 is not supported/);
    expect(() => loadPreprocessorConfig(dirWith({ 'preprocessor_config.json': { max_pixels: -1 } }))).toThrow(/max_pixels must be a positive integer/);
    expect(() => loadPreprocessorConfig(dirWith({ 'preprocessor_config.json': { image_std: [1, 0, 1] } }))).toThrow(/image_std has a zero entry/);
  });
  test('patch sizes must agree with config.json', () => {
    const d = dirWith({ 'config.json': released7b(), 'preprocessor_config.json': { patch_size: 16 } });
    expect(() => loadModelConfig(d)).toThrow(/preprocessor_config\.json: patch\/merge\/temporal sizes 16\/2\/2 differ from config\.json's 14\/2\/2/);
  });
});

describe('generation_config.json', () => {
  test('golden tiny checkpoint (released Qwen2.5-VL shape)', () => {
    expect(loadGenerationConfig(path.join(GOLDEN_MODELS, 'tiny-flat'))).toMatchObject({
      repetitionPenalty: 1.05, eosIds: [362, 360], padId: 360, bosId: 360, doSample: true, temperature: 1e-6, source: 'file',
    });
  });
  test('absent file or key: repetition_penalty 1.0', () => {
    expect(loadGenerationConfig(dirWith({})).repetitionPenalty).toBe(1.0);
    expect(loadGenerationConfig(dirWith({ 'generation_config.json': { eos_token_id: 7 } }))).toMatchObject({ repetitionPenalty: 1.0, eosIds: [7] });
  });
  test('errors', () => {
    expect(() => loadGenerationConfig(dirWith({ 'generation_config.json': { repetition_penalty: 0 } }))).toThrow(/repetition_penalty must be a positive number, got 0/);
    expect(() => loadGenerationConfig(dirWith({ 'generation_config.json': { eos_token_id: 'x' } }))).toThrow(/eos_token_id must be an id or a list of ids/);
  });
});
