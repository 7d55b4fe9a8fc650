// The GPU memory plan against figures computed by hand from the 7B config (the arithmetic is in the comments,
// independent of the code's formulas), and the refusals naming the flag to change.
import { DEFAULT_GPU_CAPACITY, planInference, planTraining } from '../../../src/plan/gpu_memory';
import { dacParams, headParams, kvBytesPerToken, llmGemmParams, llmParams, PRESETS, visionMatrixParams, visionParams } from '../../../src/plan/model_shape';
import { parseBytes } from '../../../src/plan/units';

const S7 = PRESETS['7b'];
const GiB = 2 ** 30;
const item = (p: { items: { what: string; bytes: number }[] }, prefix: string) => {
  const i = p.items.find((x) => x.what.startsWith(prefix));
  if (!i) throw new Error(`no item ${prefix}`);
  return i.bytes;
};

describe('7B parameter counts (model.md §9.4: LLM 7.62e9, vision 0.68e9, total 8.29e9)', () => {
  test('LLM: 2 x 152064 x 3584 embeddings + 28 x 233,057,792 per layer + 3584 final norm', () => {
    // layer: q 3584*3584+3584, k and v 3584*512+512 each, o 3584*3584, MLP 3*3584*18944, 2 norms of 3584
    expect(12848640 + 2 * 1835520 + 12845056 + 203685888 + 7168).toBe(233057792);
    expect(llmParams(S7.text)).toBe(2 * 544997376 + 28 * 233057792 + 3584); // 7,615,616,512
  });
  test('vision: patch 1280*1176 + 32 blocks of 19,702,200 + merger 44,574,464', () => {
    expect(visionParams(S7.vision)).toBe(1505280 + 32 * 19702200 + 44574464); // 676,550,144
    expect((llmParams(S7.text) + visionParams(S7.vision)) / 1e9).toBeCloseTo(8.29, 2);
  });
  test('BCM head ~51.4M (DAC: no queries), KV cache 56 KiB per token', () => {
    expect(headParams(S7.text)).toBe(4 * 3584 * 3584 + 14 * 3584); // 51,430,400
    expect(dacParams(S7.text)).toBe(4 * 3584 * 3584 + 6 * 3584); // 51,401,728
    expect(kvBytesPerToken(S7.text)).toBe(56 * 1024);
  });
  test('GEMM weights (bf16 shadows on the GPU): 28 x 233,046,016 + lm_head; ViT matrices', () => {
    // layer: q 3584*3584, k and v 3584*512 each, o 3584*3584, MLP 3*3584*18944
    expect(12845056 + 2 * 1835008 + 12845056 + 203685888).toBe(233046016);
    expect(llmGemmParams(S7.text)).toBe(28 * 233046016 + 544997376); // 7,070,285,824
    // patch 1280*1176, 32 blocks of 4*1280^2 + 3*1280*3420, merger 5120^2 + 5120*3584
    expect(visionMatrixParams(S7.vision)).toBe(1505280 + 32 * 19686400 + 44564480); // 676,034,560
  });
});

describe('inference plan', () => {
  const hr8k = { shape: S7, imageTokens: 16384, promptTokens: 512, maxNewTokens: 512, latentSteps: 8, gpuCapacity: DEFAULT_GPU_CAPACITY, hostCapacity: 64 * GiB };

  test('7B + an HR-Bench 8K image (16,384 tokens, 65,536 patches) fits an 80 GB GPU with the whole prompt at once', () => {
    const p = planInference(hr8k);
    expect(p.fits).toBe(true);
    expect(item(p, 'LLM weights')).toBe(15231233024);
    expect(item(p, 'KV cache')).toBe(17416 * 57344); // 16384 + 512 + 512 + 8 tokens
    // ViT, every buffer of one forward per patch, three regions shared by buffers that are never live together:
    // max(gate 2*3420, pixels 2*1176, merger output 4*3584/4) 6,840 + max(up 2*3420, patch embeddings 4*1280) 6,840 +
    // max(qkv 6*1280, merger input 2*1280) 7,680; residual 4*1280 + normed 2*1280 + attention 2*1280 + RoPE 2*4*80
    // + slot 4 + raster order 4/4 = 10,885 -> 32,245
    expect(item(p, 'ViT activations')).toBe(65536 * 32245);
    // LLM scratch per token: residual 4*3584 + normed 2*3584 + qkv 2*(3584+1024) + attention 2*3584 + gate/up
    // 4*18944 + M-RoPE 2*4*128 + lse 4*28 = 114,800
    expect(item(p, 'LLM prefill activations (whole prompt)')).toBe(16896 * 114800);
    expect(item(p, 'vision features')).toBe(16384 * (4 * 3584 + 4));
    expect(item(p, 'prompt ids + input embeddings')).toBe(16896 * (4 * 3584 + 4));
    // LLM + ViT weights 16,584,333,312 + KV 998,703,104 + ViT 2,113,208,320 + LLM 1,939,660,800 + features
    // 234,946,560 + prompt 242,288,640 + logits 608,256 + 1 GiB context + 256 MiB workspace = 23,455,926,272, + 5%
    expect(p.gpuBytes).toBe(23455926272 + Math.ceil(23455926272 * 0.05));
    expect(p.gpuBytes / GiB).toBeCloseTo(22.94, 2);
  });

  test('a smaller GPU gets chunked prefill before a refusal', () => {
    // whole prompt 22.94 GiB; chunks of 8192: 21.96 GiB, of 4096: 21.50 GiB
    expect(planInference({ ...hr8k, gpuCapacity: 22 * GiB }).notes.join(' ')).toMatch(/chunked prefill: 8192 tokens/);
    const p = planInference({ ...hr8k, gpuCapacity: 21.6 * GiB });
    expect(p.fits).toBe(true);
    expect(p.notes.join(' ')).toMatch(/chunked prefill: 4096 tokens/);
  });

  test('weights that cannot fit are refused in one line', () => {
    const p = planInference({ ...hr8k, gpuCapacity: parseBytes('16GB', '--gpu-memory') });
    expect(p.fits).toBe(false);
    expect(p.problem).toMatch(/bf16 weights alone need .* use a GPU with more memory/);
    expect(p.problem).not.toMatch(/\n/);
  });

  test('an image too large for the remaining memory names the pixels flag', () => {
    const p = planInference({ ...hr8k, imageTokens: 262144, gpuCapacity: 40 * GiB, pixelsFlag: '--max-pixels' });
    expect(p.fits).toBe(false);
    expect(p.problem).toMatch(/lower --max-pixels/);
  });
});

describe('training plan (stage 1, packing: 16,384 tokens, all visual)', () => {
  const base = { shape: S7, stage: 1 as const, tokens: 16384, visualTokens: 16384, gpuCapacity: DEFAULT_GPU_CAPACITY, hostCapacity: 256 * GiB };
  const P = 7615616512 + 51430400; // LLM + BCM = 7,667,046,912 trainable
  const G = 7070285824 + 4 * 3584 * 3584; // their GEMM weights = 7,121,666,048
  const VIT = 2 * 676034560 + 4 * 515584; // bf16 matrices + fp32 vectors (norms, biases) = 1,354,131,456

  test('auto picks host optimizer states; GPU and host totals by hand', () => {
    const p = planTraining({ ...base, optimizerStates: 'auto' });
    expect(p.optimizerStates).toBe('host');
    expect(p.fits).toBe(true);
    expect(item(p, 'bf16 shadows of the GEMM weights')).toBe(2 * G);
    // non-GEMM tensors: embedding 544,997,376 + 28 x (biases 4,608 + norms 7,168) + final norm 3,584 + BCM 14 x 3,584
    expect(P - G).toBe(544997376 + 28 * 11776 + 3584 + 14 * 3584);
    expect(item(p, 'fp32 copies of the non-GEMM tensors')).toBe(4 * (P - G));
    expect(item(p, 'gradients')).toBe(4 * P);
    expect(item(p, 'frozen ViT')).toBe(VIT);
    expect(p.checkpointing).toBe(true); // the default: --gradient-checkpointing on
    expect(item(p, 'decoder layer inputs')).toBe(29 * 16384 * 3584 * 4); // 28 layer inputs + the final residual, fp32
    // The decoder's arena (GpuTrainLLM, counted by hand): 564,352 B per token - layer inputs 29 x 4D = 415,744;
    // tables: final rstd 4, M-RoPE 2 x 4 x 128, bounds 4, norm output 4D = 15,368; the recomputed layer: rstd1 + rstd2
    // 8, x2 4D, lse 4 x 28, h1 + h2 4D, q|k|v 2 x 4608, attention 2 x 3584 = 45,176; backward: dy, dprev, dx2, dh
    // 16D, datt 4D, bf16 gradient 2D, dq|k|v 2 x 4608 = 88,064 - plus 14 B per element of the MLP chunk
    // [1024, 18944] (SwiGLU 2, gate + up 4, dF 4, dgate + dup 4) and the bounds' 2 extra ints.
    const decoder = p.items.filter((i) => i.what.startsWith('decoder')).reduce((a, i) => a + i.bytes, 0);
    expect(decoder).toBe(16384 * 564352 + 14 * 1024 * 18944 + 8);
    // 2G + 4(P - G) + 4P + ViT + activations 13,464,043,528 (the decoder 9,517,924,360; the frozen ViT's forward:
    // 65,536 patches x 32,245 B, as for inference; CE chunk, visual features, BCM keys/values 3,946,119,168)
    // + 1.25 GiB = 63,253,395,464, + 5%
    expect(decoder + 2 * 1024 * 152064 * 4 + 65536 * 32245 + 16384 * 3584 * 2 + 4 * 16384 * 3584 * 2).toBe(13464043528);
    expect(2 * G + 4 * (P - G) + 4 * P + VIT + 13464043528 + 1.25 * GiB).toBe(63253395464);
    expect(p.gpuBytes).toBe(63253395464 + Math.ceil(63253395464 * 0.05));
    expect(p.gpuBytes / GiB).toBeCloseTo(61.855, 3);
    // fp32 master + two moments = 12 B/param, + 2 pinned slots of 32 Mi x (4 + 2) B + 2 GiB baseline
    expect(item(p, 'gradient / new-weight staging')).toBe(2 * 6 * 2 ** 25);
    expect(p.hostBytes).toBe(12 * P + 384 * 2 ** 20 + 2 * GiB);
    expect(p.hostBytes / GiB).toBeCloseTo(88.06, 2);
    expect(p.notes.join(' ')).toMatch(/all-reduce .* between .* gradient accumulation and the optimizer step/);
  });

  test('everything on the GPU (16 B/param + bf16 shadows) does not fit 80 GB and names the alternative', () => {
    const p = planTraining({ ...base, optimizerStates: 'gpu' });
    expect(p.fits).toBe(false);
    expect(item(p, 'fp32 master weights')).toBe(4 * P);
    expect(item(p, 'AdamW exp_avg')).toBe(8 * P);
    expect(item(p, 'bf16 shadows of the GEMM weights')).toBe(2 * G);
    expect(item(p, 'fp32 weights on the host')).toBe(4 * P);
    expect(p.gpuBytes).toBeGreaterThan(16 * P);
    expect(p.problem).toMatch(/--optimizer-states host needs .* \(fits\)$/);
    expect(p.problem).not.toMatch(/8bit/);
  });

  test('host mode on a host with little RAM is refused in one line, naming what to change', () => {
    const p = planTraining({ ...base, optimizerStates: 'host', hostCapacity: 64 * GiB });
    expect(p.fits).toBe(false);
    expect(p.problem).toMatch(/host cannot hold the fp32 master weights and AdamW moments: use a host with more memory/);
    expect(p.problem).not.toMatch(/\n|8bit/);
  });

  test('stage 2: the DAC is trained, the frozen BCM teacher adds bf16 GEMM weights + fp32 vectors; too many tokens names the batch flags', () => {
    const p = planTraining({ ...base, stage: 2, optimizerStates: 'auto' });
    expect(p.optimizerStates).toBe('host');
    expect(item(p, 'frozen BCM teacher')).toBe(2 * 4 * 3584 * 3584 + 4 * 14 * 3584);
    expect(item(p, 'gradients')).toBe(4 * (7615616512 + 51401728));
    expect(item(p, 'fp32 master weights (+ the frozen teacher)')).toBe(4 * (7615616512 + 51401728 + 51430400));
    expect(p.gpuBytes / GiB).toBeCloseTo(62.185, 2);
    expect(p.hostBytes / GiB).toBeCloseTo(88.25, 2);
    const big = planTraining({ ...base, tokens: 200000, visualTokens: 100000, optimizerStates: 'host' });
    expect(big.fits).toBe(false);
    expect(big.problem).toMatch(/--image-max-pixels.*--per-device-batch-size/);
  });

  test('the 3B fits everything on an 80 GB GPU (auto picks gpu)', () => {
    const p = planTraining({ ...base, shape: PRESETS['3b'], tokens: 4096, visualTokens: 2048, optimizerStates: 'auto' });
    expect(p.optimizerStates).toBe('gpu');
    expect(p.fits).toBe(true);
    expect(p.gpuBytes / GiB).toBeCloseTo(60.47, 2);
  });
});

describe('training plan: --gradient-checkpointing on the GPU (7B, host placement, 80 GB)', () => {
  const base = { shape: S7, stage: 1 as const, gpuCapacity: DEFAULT_GPU_CAPACITY, hostCapacity: 256 * GiB, optimizerStates: 'auto' as const };
  // Without recomputation the decoder keeps per layer, per token: rstd1 + rstd2 8, x2 4D, lse 4 x 28, h1 + h2 4D,
  // q|k|v 2 x 4608, attention 2 x 3584, gate + up 4 x 18944 = 120,952 B; the rest as with it, less the recomputed
  // layer: 415,744 + 15,368 + 28 x 120,952 + 88,064 = 3,905,832 B per token, + 10 B per element of the MLP chunk;
  // the backward's bf16 gradient buffer (2D per token of that) is the larger of [T, D] and the chunk [1024, 18944].
  const offBytes = (T: number) => T * (3905832 - 2 * 3584) + 10 * Math.min(T, 1024) * 18944 + 2 * Math.max(T * 3584, Math.min(T, 1024) * 18944) + 8;
  const decoder = (p: { items: { what: string; bytes: number }[] }) => p.items.filter((i) => i.what.startsWith('decoder')).reduce((a, i) => a + i.bytes, 0);

  test('off at 4,096 tokens keeps every layer (16.2 GB) and fits; auto picks it', () => {
    const off = planTraining({ ...base, tokens: 4096, visualTokens: 2048, checkpointing: 'off' });
    expect(off).toMatchObject({ fits: true, checkpointing: false, optimizerStates: 'host' });
    expect(decoder(off)).toBe(offBytes(4096));
    expect(item(off, "decoder: every layer's activations kept")).toBe(28 * 4096 * 120952);
    expect(off.notes.join(' ')).toMatch(/no activation checkpointing/);
    const auto = planTraining({ ...base, tokens: 4096, visualTokens: 2048, checkpointing: 'auto' });
    expect(auto).toMatchObject({ fits: true, checkpointing: false, gpuBytes: off.gpuBytes });
    const on = planTraining({ ...base, tokens: 4096, visualTokens: 2048, checkpointing: 'on' });
    expect(on.checkpointing).toBe(true);
    expect(off.gpuBytes - on.gpuBytes).toBe(Math.ceil((decoder(off) - decoder(on) + sumOther(off) - sumOther(on)) * 1.05));
  });

  test('off at 8,192 tokens does not fit: one line naming auto / on; auto falls back to recomputation', () => {
    const off = planTraining({ ...base, tokens: 8192, visualTokens: 4096, checkpointing: 'off' });
    expect(off.fits).toBe(false);
    expect(decoder(off)).toBe(offBytes(8192));
    expect(off.problem).toMatch(/--gradient-checkpointing off\) do not fit; with recomputation it needs .* \(fits\): pass --gradient-checkpointing auto or on$/);
    const auto = planTraining({ ...base, tokens: 8192, visualTokens: 4096, checkpointing: 'auto' });
    expect(auto).toMatchObject({ fits: true, checkpointing: true, optimizerStates: 'host' });
  });

  test('auto keeps the placement preference: the 3B at 4,096 tokens is gpu placement without recomputation', () => {
    const p = planTraining({ ...base, shape: PRESETS['3b'], tokens: 4096, visualTokens: 2048, checkpointing: 'auto' });
    expect(p).toMatchObject({ fits: true, checkpointing: false, optimizerStates: 'gpu' });
  });
});

// Bytes of the non-decoder GPU items (identical with and without recomputation, so their difference is 0).
function sumOther(p: { items: { what: string; where: string; bytes: number }[] }): number {
  return p.items.filter((i) => i.where === 'gpu' && !i.what.startsWith('decoder') && i.what !== 'allocator margin').reduce((a, i) => a + i.bytes, 0);
}
