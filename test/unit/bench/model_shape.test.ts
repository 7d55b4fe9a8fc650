// The 7B shape and the cost arithmetic, checked against the figures in docs/model.md §2.3 / §9.4 and
// docs/engineering.md (766 GFLOP prefill, 2.96 GB/token decode for 4+4 layers, 305 prompt tokens).
import { benchShape, configJson, decodeParamsPerToken, FULL_7B, kvCacheBytes, parameterCount, prefillCost, tensorSpecs, STOP_TOKEN_IDS } from '../../../src/bench/model_shape';

const count = (prefix: string, shape = FULL_7B) =>
  tensorSpecs(shape).filter((t) => t.name.startsWith(prefix)).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);

describe('Qwen2.5-VL-7B shape', () => {
  test('parameter counts of the released model (model.md §2.3)', () => {
    expect(parameterCount(FULL_7B)).toBe(8_292_166_656);
    expect(count('visual.')).toBe(676_550_144);
    expect(count('visual.patch_embed.')).toBe(1_505_280);
    expect(count('visual.blocks.0.')).toBe(19_702_200);
    expect(count('visual.merger.')).toBe(44_574_464);
    expect(count('model.layers.0.')).toBe(233_057_792);
    expect(count('model.embed_tokens.')).toBe(544_997_376);
    expect(count('lm_head.')).toBe(544_997_376);
  });

  test('shapes follow the [out, in] Linear layout', () => {
    const byName = new Map(tensorSpecs(FULL_7B).map((t) => [t.name, t.shape]));
    expect(byName.get('visual.patch_embed.proj.weight')).toEqual([1280, 3, 2, 14, 14]);
    expect(byName.get('visual.blocks.31.attn.qkv.weight')).toEqual([3840, 1280]);
    expect(byName.get('visual.merger.mlp.0.weight')).toEqual([5120, 5120]);
    expect(byName.get('model.layers.27.self_attn.k_proj.weight')).toEqual([512, 3584]);
    expect(byName.get('model.layers.27.mlp.down_proj.weight')).toEqual([3584, 18944]);
    expect(byName.has('model.layers.0.self_attn.o_proj.bias')).toBe(false);
  });

  test('bench shape: 4+4 layers, last ViT block full attention, 7B widths in config.json', () => {
    const s = benchShape();
    expect(s).toEqual({ llmLayers: 4, vitLayers: 4, fullattBlocks: [3] });
    expect(benchShape(28, 32).fullattBlocks).toEqual([7, 15, 23, 31]);
    const c = configJson(s) as any;
    expect(c.num_hidden_layers).toBe(4);
    expect(c.vision_config.depth).toBe(4);
    expect(c.vision_config.fullatt_block_indexes).toEqual([3]);
    expect([c.hidden_size, c.intermediate_size, c.num_attention_heads, c.num_key_value_heads, c.vocab_size]).toEqual([3584, 18944, 28, 4, 152064]);
    expect(c.rope_scaling).toEqual({ type: 'mrope', mrope_section: [16, 24, 24] });
    expect(() => benchShape(0, 4)).toThrow(/LLM layer count/);
  });

  test('per-token and per-image-token costs of the full model (model.md §9.4)', () => {
    const one = prefillCost(FULL_7B, undefined, 1);
    expect(one.llmDenseMac / 1e9).toBeCloseTo(6.53, 2); // 13.05 GFLOP per token
    expect(one.lmHeadMac).toBe(544_997_376);
    // Vision per LLM image token: 4 patches through 32 blocks + the merger, no attention: 2.57e9 MAC.
    const img = prefillCost(FULL_7B, { t: 1, h: 2, w: 2 }, 0);
    expect((img.vitDenseMac + img.mergerMac) / 1e9).toBeCloseTo(2.57, 2);
  });

  test('the 4+4-layer benchmark: 766 GFLOP prefill and 2.96 GB per decoded token (engineering.md)', () => {
    const s = benchShape();
    const c = prefillCost(s, { t: 1, h: 32, w: 32 }, 305);
    expect(c.totalFlop / 1e9).toBeCloseTo(766, 0);
    expect((decodeParamsPerToken(s) * 2) / 1e9).toBeCloseTo(2.95, 2);
    expect((parameterCount(s) * 2) / 1e9).toBeCloseTo(4.29, 2);
    // 16 windows of 8x8 patches in 3 blocks, one full block over 1024 patches.
    expect(c.vitAttnMac).toBe(3 * 16 * 2 * 64 * 64 * 1280 + 2 * 1024 * 1024 * 1280);
  });

  test('KV cache bytes: 56 KiB per token in bf16 for 28 layers (model.md §9.4)', () => {
    expect(kvCacheBytes(FULL_7B, 1, 2)).toBe(56 * 1024);
    expect(kvCacheBytes(benchShape(), 1000, 4)).toBe(4 * 2 * 4 * 128 * 1000 * 4);
  });

  test('lm_head rows of <|endoftext|> and <|im_end|> are zeroed so random weights never stop early', () => {
    expect(STOP_TOKEN_IDS).toEqual([151643, 151645]);
    expect(tensorSpecs(benchShape()).find((t) => t.name === 'lm_head.weight')?.zeroRows).toEqual(STOP_TOKEN_IDS);
  });
});
