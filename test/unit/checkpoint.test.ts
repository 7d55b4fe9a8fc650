// Checkpoint table: the golden tiny checkpoints (Python-written: legacy names in one F32 file; in-memory names
// in three BF16 shards with an index, tied embeddings) and synthetic directories for every validation error.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { openCheckpoint } from '../../src/model/checkpoint';
import { loadModelConfig, ModelConfig } from '../../src/model/config';
import { readSafetensorsHeader } from '../../src/model/safetensors';
import { TensorData, writeSafetensors } from '../../src/model/safetensors_writer';
import { canonicalTensorName, expectedTensorShapes } from '../../src/model/tensor_names';

const GOLDEN_MODELS = path.join(__dirname, '../golden/models');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-ckpt-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

describe('golden checkpoints', () => {
  test('tiny-flat: legacy names, one F32 file, separate lm_head', () => {
    const dir = path.join(GOLDEN_MODELS, 'tiny-flat');
    const cfg = loadModelConfig(dir);
    const ck = openCheckpoint(dir, cfg);
    // model.md §2.3 counts for depth 4 / 3 layers: 1 + 12*4 + 5 vision, 1 + 12*3 + 1 + 1 text
    expect(ck.tensors.length).toBe(54 + 39);
    expect(ck.extra).toEqual([]);
    expect(ck.dtypes).toEqual(new Set(['F32']));
    const h = readSafetensorsHeader(path.join(dir, 'model.safetensors'));
    const t = ck.tensors.find((x) => x.name === 'visual.blocks.2.attn.qkv.weight')!;
    const info = h.tensors.get('visual.blocks.2.attn.qkv.weight')!;
    expect(t).toEqual({
      name: 'visual.blocks.2.attn.qkv.weight', storedName: 'visual.blocks.2.attn.qkv.weight', file: path.join(dir, 'model.safetensors'),
      offset: h.dataStart + info.begin, nbytes: 96 * 32 * 4, dtype: 'F32', shape: [96, 32],
    });
    expect(ck.tensors.find((x) => x.name === 'lm_head.weight')!.shape).toEqual([416, 64]);
    // the parameter count of golden/README.md §2
    expect(ck.tensors.reduce((a, x) => a + x.shape.reduce((p, d) => p * d, 1), 0)).toBe(263200);
  });

  test('tiny-nested: in-memory names, three BF16 shards, tied (no lm_head)', () => {
    const dir = path.join(GOLDEN_MODELS, 'tiny-nested');
    const ck = openCheckpoint(dir, loadModelConfig(dir));
    expect(ck.files.map((f) => path.basename(f))).toEqual(['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    expect(ck.dtypes).toEqual(new Set(['BF16']));
    expect(ck.tensors.some((t) => t.name === 'lm_head.weight')).toBe(false);
    const emb = ck.tensors.find((t) => t.name === 'model.embed_tokens.weight')!;
    expect(emb.storedName).toBe('model.language_model.embed_tokens.weight');
    expect(emb.nbytes).toBe(416 * 64 * 2);
    expect(ck.tensors.find((t) => t.name === 'visual.merger.mlp.0.weight')!.storedName).toBe('model.visual.merger.mlp.0.weight');
    expect(ck.tensors.reduce((a, x) => a + x.shape.reduce((p, d) => p * d, 1), 0)).toBe(240032);
  });
});

test('canonical names (model.md §2.2)', () => {
  expect(canonicalTensorName('model.language_model.layers.3.mlp.up_proj.weight')).toBe('model.layers.3.mlp.up_proj.weight');
  expect(canonicalTensorName('model.visual.blocks.0.norm1.weight')).toBe('visual.blocks.0.norm1.weight');
  expect(canonicalTensorName('model.layers.0.input_layernorm.weight')).toBe('model.layers.0.input_layernorm.weight');
  expect(canonicalTensorName('lm_head.weight')).toBe('lm_head.weight');
  expect(canonicalTensorName('box_feature_resampler.queries')).toBe('box_feature_resampler.queries');
});

test('7B shapes derived from the config (model.md §2.3 parameter count 8,292,166,656)', () => {
  const dir = path.join(tmpRoot, 'cfg7b');
  fs.mkdirSync(dir);
  const flat = JSON.parse(fs.readFileSync(path.join(GOLDEN_MODELS, 'tiny-flat/config.json'), 'utf8'));
  Object.assign(flat, {
    hidden_size: 3584, intermediate_size: 18944, num_hidden_layers: 28, num_attention_heads: 28, num_key_value_heads: 4, vocab_size: 152064,
    image_token_id: 151655, video_token_id: 151656, vision_start_token_id: 151652, vision_end_token_id: 151653,
    lvr_start_id: 151665, lvr_id: 151666, lvr_latent_end_id: 151667, lvr_end_id: 151668,
    rope_scaling: { type: 'mrope', mrope_section: [16, 24, 24] },
  });
  Object.assign(flat.vision_config, { depth: 32, hidden_size: 1280, num_heads: 16, intermediate_size: 3420, out_hidden_size: 3584, fullatt_block_indexes: [7, 15, 23, 31] });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(flat));
  const shapes = expectedTensorShapes(loadModelConfig(dir));
  let total = 0;
  for (const s of shapes.values()) total += s.reduce((a, b) => a * b, 1);
  expect(total).toBe(8292166656);
  expect(shapes.get('visual.patch_embed.proj.weight')).toEqual([1280, 3, 2, 14, 14]);
  expect(shapes.get('visual.merger.mlp.0.weight')).toEqual([5120, 5120]);
  expect(shapes.get('model.layers.27.self_attn.k_proj.weight')).toEqual([512, 3584]);
  expect(shapes.get('model.layers.0.mlp.down_proj.weight')).toEqual([3584, 18944]);
});

describe('synthetic checkpoints: validation errors name the tensor', () => {
  const cfgDir = path.join(GOLDEN_MODELS, 'tiny-flat');
  let cfg: ModelConfig;
  let base: Map<string, TensorData>;
  let n = 0;
  beforeAll(() => {
    cfg = loadModelConfig(cfgDir);
    base = new Map();
    for (const [name, shape] of expectedTensorShapes(cfg))
      base.set(name, { dtype: 'BF16', shape, data: new Uint16Array(shape.reduce((a, b) => a * b, 1)) });
  });

  /** A checkpoint dir with tiny-flat's config and the given shards (file name -> tensors), optional index. */
  function makeDir(shards: Record<string, Map<string, TensorData>>, index?: Record<string, string>, config?: (c: any) => void): string {
    const dir = path.join(tmpRoot, `syn${n++}`);
    fs.mkdirSync(dir);
    const c = JSON.parse(fs.readFileSync(path.join(cfgDir, 'config.json'), 'utf8'));
    if (config) config(c);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c));
    for (const [file, tensors] of Object.entries(shards)) writeSafetensors(path.join(dir, file), tensors, { format: 'pt' });
    if (index) fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: index }));
    return dir;
  }
  const open = (dir: string) => openCheckpoint(dir, loadModelConfig(dir));
  const edit = (f: (m: Map<string, TensorData>) => void) => {
    const m = new Map(base);
    f(m);
    return m;
  };

  test('a complete BF16 checkpoint opens', () => {
    const ck = open(makeDir({ 'model.safetensors': base }));
    expect(ck.tensors.length).toBe(base.size);
    expect(ck.dtypes).toEqual(new Set(['BF16']));
  });
  test('missing tensor', () => {
    const dir = makeDir({ 'model.safetensors': edit((m) => m.delete('model.layers.1.self_attn.v_proj.bias')) });
    expect(() => open(dir)).toThrow(/missing tensor model\.layers\.1\.self_attn\.v_proj\.bias/);
  });
  test('missing lm_head of an untied model', () => {
    const dir = makeDir({ 'model.safetensors': edit((m) => m.delete('lm_head.weight')) });
    expect(() => open(dir)).toThrow(/missing tensor lm_head\.weight \(config\.json says tie_word_embeddings is false\)/);
  });
  test('wrong shape', () => {
    const dir = makeDir({ 'model.safetensors': edit((m) => m.set('visual.blocks.3.mlp.down_proj.weight', { dtype: 'BF16', shape: [48, 32], data: new Uint16Array(48 * 32) })) });
    expect(() => open(dir)).toThrow('checkpoint: tensor visual.blocks.3.mlp.down_proj.weight has shape [48, 32], expected [32, 48] from config.json');
  });
  test('wrong dtype', () => {
    const dir = makeDir({ 'model.safetensors': edit((m) => m.set('model.norm.weight', { dtype: 'I32', shape: [64], data: new Int32Array(64) })) });
    expect(() => open(dir)).toThrow('checkpoint: tensor model.norm.weight has dtype I32, expected F32, BF16 or F16');
  });
  test('V-Reflection BCM/DAC tensors are allowed and listed', () => {
    const dir = makeDir({ 'model.safetensors': edit((m) => {
      m.set('box_feature_resampler.queries', { dtype: 'BF16', shape: [1, 8, 64], data: new Uint16Array(512) });
      m.set('student_resampler.output_norm.weight', { dtype: 'BF16', shape: [64], data: new Uint16Array(64) });
      m.set('some.other.buffer', { dtype: 'F32', shape: [2], data: new Float32Array(2) });
    }) });
    const ck = open(dir);
    expect(ck.extra.map((t) => t.name).sort()).toEqual(['box_feature_resampler.queries', 'some.other.buffer', 'student_resampler.output_norm.weight']);
    expect(ck.lvrModules.sort()).toEqual(['box_feature_resampler.queries', 'student_resampler.output_norm.weight']);
    expect(ck.tensors.length).toBe(base.size);
  });
  test('a layer beyond the config is a config/weights mismatch', () => {
    const dir = makeDir({ 'model.safetensors': edit((m) => m.set('model.layers.3.input_layernorm.weight', { dtype: 'BF16', shape: [64], data: new Uint16Array(64) })) });
    expect(() => open(dir)).toThrow(/model\.layers\.3\.input_layernorm\.weight belongs to layer 3, but config\.json has num_hidden_layers 3/);
  });
  test('both spellings of one tensor', () => {
    const dir = makeDir({ 'model.safetensors': edit((m) => m.set('model.language_model.norm.weight', base.get('model.norm.weight')!)) });
    expect(() => open(dir)).toThrow(/tensor model\.norm\.weight appears twice: as (model\.language_model\.norm\.weight|model\.norm\.weight)/);
  });
  test('a tied config ignores a stored lm_head (listed as extra)', () => {
    const dir = makeDir({ 'model.safetensors': base }, undefined, (c) => (c.tie_word_embeddings = true));
    const ck = open(dir);
    expect(ck.tensors.some((t) => t.name === 'lm_head.weight')).toBe(false);
    expect(ck.extra.map((t) => t.name)).toEqual(['lm_head.weight']);
  });
  test('sharded: resolved through the index', () => {
    const a = new Map([...base].filter(([k]) => k.startsWith('visual.')));
    const b = new Map([...base].filter(([k]) => !k.startsWith('visual.')));
    const index = Object.fromEntries([...a.keys()].map((k) => [k, 'a.safetensors']).concat([...b.keys()].map((k) => [k, 'b.safetensors'])));
    const ck = open(makeDir({ 'a.safetensors': a, 'b.safetensors': b }, index));
    expect(ck.tensors.find((t) => t.name === 'visual.merger.ln_q.weight')!.file).toMatch(/a\.safetensors$/);
    expect(ck.tensors.find((t) => t.name === 'model.norm.weight')!.file).toMatch(/b\.safetensors$/);
  });
  test('sharded: the index names a missing shard', () => {
    const index = Object.fromEntries([...base.keys()].map((k) => [k, k === 'model.norm.weight' ? 'gone.safetensors' : 'a.safetensors']));
    const dir = makeDir({ 'a.safetensors': base }, index);
    expect(() => open(dir)).toThrow(/model\.safetensors\.index\.json names gone\.safetensors, which does not exist/);
  });
  test('sharded: the index places a tensor in a shard that lacks it', () => {
    const index = Object.fromEntries([...base.keys()].map((k) => [k, 'a.safetensors']));
    const dir = makeDir({ 'a.safetensors': edit((m) => m.delete('model.norm.weight')) }, index);
    expect(() => open(dir)).toThrow(/places model\.norm\.weight in a\.safetensors, which does not contain it/);
  });
  test('sharded: a tensor stored in two shards', () => {
    const a = new Map([...base].filter(([k]) => k.startsWith('visual.')));
    const b = new Map([...base].filter(([k]) => !k.startsWith('visual.')));
    b.set('visual.merger.ln_q.weight', base.get('visual.merger.ln_q.weight')!);
    const index = Object.fromEntries([...a.keys()].map((k) => [k, 'a.safetensors']).concat([...b.keys()].filter((k) => !k.startsWith('visual.')).map((k) => [k, 'b.safetensors'])));
    const dir = makeDir({ 'a.safetensors': a, 'b.safetensors': b }, index);
    expect(() => open(dir)).toThrow(/tensor visual\.merger\.ln_q\.weight is stored in both a\.safetensors and b\.safetensors/);
  });
  test('sharded: a shard path leaving the folder is refused', () => {
    const dir = makeDir({ 'a.safetensors': base }, { 'model.norm.weight': '../a.safetensors' });
    expect(() => open(dir)).toThrow(/is not a file name in the same folder/);
  });
  test('no weights at all', () => {
    const dir = makeDir({});
    expect(() => open(dir)).toThrow(/no model\.safetensors or model\.safetensors\.index\.json in /);
  });
  test('a corrupt shard is reported with its path', () => {
    const dir = makeDir({ 'model.safetensors': base });
    const f = path.join(dir, 'model.safetensors');
    fs.truncateSync(f, fs.statSync(f).size - 10);
    expect(() => open(dir)).toThrow(new RegExp(`safetensors ${f.replace(/[.]/g, '\\.')}: tensor .* lie beyond the .*truncated file`));
  });
});
