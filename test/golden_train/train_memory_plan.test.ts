// The GPU memory plan (src/plan/gpu_memory.ts stateItems) against what the GPU trainer really allocates, on the
// tiny golden checkpoint through the emulator addon: for stages 1 and 2 under both optimizer placements,
// trainer.memory() reports the host ParamStore's arrays, the pinned staging, the device parameter arena and the
// frozen vision tower's arena, and each must equal the plan's items for the tiny model's shape:
//   host arrays and staging: exactly;
//   device arenas: the plan's bytes plus the stated alignment padding, computed here from the tensor list by the
//   arena's rules (gpu_train_params.cc: every tensor or fused q|k|v group starts on a 128-element boundary in each
//   storage; every storage a 256-byte-aligned arena piece; 256 fp64 norm partial sums; device_weights: one
//   256-byte-aligned piece per visual tensor).
// This is the test that catches a plan listing storages the code does not allocate, or the reverse (the host
// placement once kept a full 16 B/param ParamStore while the plan promised 12).
// The training decoder's activation arena (GpuTrainLLM, with and without gradient checkpointing) after a step of
// T tokens: the plan's decoder items (src/plan/gpu_memory.ts decoderActivationItems) exactly, and the arena =
// decoderScratchPieces each rounded up to 256 B.
import * as fs from 'fs';
import * as path from 'path';

import { openCheckpoint } from '../../src/model/checkpoint';
import { loadModelConfig, ModelConfig } from '../../src/model/config';
import { readSafetensorsHeader } from '../../src/model/safetensors';
import { decoderScratchPieces, OptimizerStates, stateItems, trainActivationItems } from '../../src/plan/gpu_memory';
import type { ModelShape } from '../../src/plan/model_shape';
import { trainBatch } from './golden';

const HERE = __dirname;
const MODEL_DIR = path.join(HERE, '..', 'golden', 'models', 'tiny-flat');
const BUILD = path.join(HERE, '..', '..', 'build');
const EMU_ADDON = path.join(BUILD, 'Release', 'vreflect_native_emu.node');
const EMU_SKIPPED = [path.join(BUILD, 'vreflect_cuda_emu_tests.skipped'), path.join(BUILD, 'Release', 'vreflect_cuda_emu_tests.skipped')].find((f) => fs.existsSync(f));
const cudaSuite = EMU_SKIPPED ? describe.skip : describe;
const golden = JSON.parse(fs.readFileSync(path.join(HERE, 'cases.json'), 'utf8'));

interface Rec { name: string; file: string; offset: number; nbytes: number; dtype: string; shape: number[] }
interface TensorInfo { name: string; shape: number[]; trainable: boolean }

function records(file: string): Rec[] {
  const h = readSafetensorsHeader(file);
  return [...h.tensors].map(([name, t]) => ({ name, file, offset: h.dataStart + t.begin, nbytes: t.end - t.begin, dtype: t.dtype, shape: t.shape }));
}

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
const round = (n: number, to: number) => Math.ceil(n / to) * to;
const STREAM_CHUNK = 1000; // smaller than most tensors, so the staging is the chunk's, not the model's size

/** Sum of the planned items whose description starts with one of the prefixes. */
function planned(items: { what: string; bytes: number; where: string }[], where: string, prefixes: string[]): number {
  const hit = items.filter((i) => i.where === where && prefixes.some((p) => i.what.startsWith(p)));
  expect(hit.length).toBe(prefixes.length);
  return hit.reduce((a, i) => a + i.bytes, 0);
}

cudaSuite('memory plan = the GPU trainer\'s allocations (tiny model, emulator addon)', () => {
  let emu: any;
  let cfg: ModelConfig;
  let shape: ModelShape;
  let base: Rec[];
  const heads = records(path.join(HERE, 'heads_init.safetensors'));
  beforeAll(() => {
    if (!fs.existsSync(EMU_ADDON)) throw new Error(`${EMU_ADDON} not built: run npx cmake-js compile`);
    emu = require(EMU_ADDON);
    cfg = loadModelConfig(MODEL_DIR);
    shape = { name: 'tiny-flat', text: cfg.text, vision: cfg.vision };
    base = openCheckpoint(MODEL_DIR, cfg).tensors as unknown as Rec[];
  });

  // The device parameter arena's bytes for this tensor list and placement, by gpu_train_params.cc's rules:
  // unpadded (what the plan counts) and as allocated (with the alignment padding).
  function deviceArena(list: TensorInfo[], mode: OptimizerStates): { plain: number; padded: number } {
    const tied = cfg.text.tieEmbeddings;
    const gemm = (t: TensorInfo) => t.shape.length === 2 && (t.name !== 'model.embed_tokens.weight' || tied);
    const storages: { size: number; has: (t: TensorInfo) => boolean }[] = [
      { size: 4, has: (t) => mode === 'gpu' || !gemm(t) || t.name === 'model.embed_tokens.weight' }, // fp32 weights
      { size: 4, has: (t) => t.trainable }, // gradients
      { size: 4, has: (t) => mode === 'gpu' && t.trainable }, // exp_avg
      { size: 4, has: (t) => mode === 'gpu' && t.trainable }, // exp_avg_sq
      { size: 2, has: gemm }, // bf16 shadows
    ];
    // Slots: q|k|v weights and q|k|v biases of a layer are one fused group; every other tensor alone.
    const slotOf = (n: string) => n.replace(/self_attn\.[qkv]_proj\./, 'self_attn.qkv_proj.');
    let plain = 0, padded = round(256 * 8, 256); // the norm's fp64 partial sums
    for (const st of storages) {
      const slots = new Map<string, number>();
      for (const t of list.filter(st.has)) slots.set(slotOf(t.name), (slots.get(slotOf(t.name)) ?? 0) + numel(t.shape));
      const values = [...slots.values()];
      plain += st.size * values.reduce((a, b) => a + b, 0);
      padded += round(st.size * values.reduce((a, n) => a + round(n, 128), 0), 256);
    }
    return { plain, padded };
  }

  const cases: [1 | 2, OptimizerStates][] = [[1, 'gpu'], [1, 'host'], [2, 'gpu'], [2, 'host']];
  test.each(cases)('stage %d, --optimizer-states %s', async (stage, mode) => {
    const c = golden.cases.find((x: any) => x.stage === stage);
    const t = await emu.createTrainer({
      config: { text: cfg.text, vision: cfg.vision, imageTokenId: cfg.tokens.image, visionStartTokenId: cfg.tokens.visionStart },
      dtype: 'bf16', tensors: [...base, ...heads],
      train: { stage, lambdaResampler: c.lambdaResampler, lambdaAttn: c.lambdaAttn, lvrId: golden.token_ids.lvr },
      device: 'cuda', optimizerStates: mode, streamChunk: STREAM_CHUNK,
    });
    const mem = t.memory();
    const list = t.tensorList() as TensorInfo[];
    const items = stateItems({ shape, stage, tokens: 64, visualTokens: 16, optimizerStates: mode, gpuCapacity: 1e12, hostCapacity: 1e12 }, mode, STREAM_CHUNK);

    // Host: exactly the plan's arrays (host: masters + moments, no gradients; gpu: the weights only) and staging.
    const all = list.reduce((a, x) => a + numel(x.shape), 0);
    const trainable = list.filter((x) => x.trainable).reduce((a, x) => a + numel(x.shape), 0);
    if (mode === 'host') {
      expect(mem.paramBytes).toBe(planned(items, 'host', ['fp32 master weights', 'AdamW exp_avg']));
      expect(mem.paramBytes).toBe(4 * all + 8 * trainable);
      expect(mem.pinnedBytes).toBe(planned(items, 'host', ['gradient / new-weight staging']));
      expect(mem.pinnedBytes).toBe(2 * (4032 + 2048)); // 2 slots of 1000 x 4 B and 1000 x 2 B, each 64-byte aligned
      expect(mem.pinned).toBe(true);
    } else {
      expect(mem.paramBytes).toBe(planned(items, 'host', ['fp32 weights on the host']));
      expect(mem.paramBytes).toBe(4 * all);
      expect(mem.pinnedBytes).toBe(0);
    }

    // Device parameter arena: the plan's storages (all GPU state items but the frozen ViT) + the padding.
    const arena = deviceArena(list, mode);
    const planDevice = items.filter((i) => i.where === 'gpu' && !i.what.startsWith('frozen ViT')).reduce((a, i) => a + i.bytes, 0);
    expect(planDevice).toBe(arena.plain);
    expect(mem.deviceParamBytes).toBe(arena.padded);

    // The frozen vision tower: bf16 matrices (and the Conv3d kernel), fp32 vectors, one 256-byte piece each.
    const visual = base.filter((r) => r.name.startsWith('visual.'));
    const vBytes = (r: Rec) => numel(r.shape) * (r.shape.length >= 2 ? 2 : 4);
    expect(planned(items, 'gpu', ['frozen ViT'])).toBe(visual.reduce((a, r) => a + vBytes(r), 0));
    expect(mem.deviceFrozenBytes).toBe(visual.reduce((a, r) => a + round(vBytes(r), 256), 0));
  });

  test.each([[true], [false]])('decoder activations, gradientCheckpointing %s: the plan\'s decoder items = the arena', async (checkpointing) => {
    const c = golden.cases.find((x: any) => x.case === 'stage1_packed');
    const t = await emu.createTrainer({
      config: { text: cfg.text, vision: cfg.vision, imageTokenId: cfg.tokens.image, visionStartTokenId: cfg.tokens.visionStart },
      dtype: 'bf16', tensors: [...base, ...heads],
      train: { stage: 1, lambdaResampler: c.lambdaResampler, lvrId: golden.token_ids.lvr, gradientCheckpointing: checkpointing },
      device: 'cuda',
    });
    expect(t.memory()).toMatchObject({ deviceDecoderBytes: 0, checkpointing });
    const micro = c.steps[0].micro[0];
    const b = trainBatch(micro.batch);
    await t.forwardBackward(b, { gradScale: micro.gradScale });
    const T = b.numTokens;
    const pieces = decoderScratchPieces(cfg.text, T, checkpointing);
    expect(pieces.filter((p) => p.group === 'kept')).toHaveLength(checkpointing ? 10 : 10 * cfg.text.layers);
    const items = trainActivationItems({ shape, stage: 1, tokens: T, visualTokens: b.numVisualTokens, optimizerStates: 'gpu', gpuCapacity: 1e12, hostCapacity: 1e12 }, checkpointing);
    const planned = items.filter((i) => i.what.startsWith('decoder')).reduce((a, i) => a + i.bytes, 0);
    expect(planned).toBe(pieces.reduce((a, p) => a + p.bytes, 0));
    expect(t.memory()).toMatchObject({ deviceDecoderBytes: pieces.reduce((a, p) => a + round(p.bytes, 256), 0), checkpointing });
  });

  test('streamChunk is refused on the CPU and must be a positive integer', async () => {
    const spec = (extra: Record<string, unknown>) => ({
      config: { text: cfg.text, vision: cfg.vision, imageTokenId: cfg.tokens.image, visionStartTokenId: cfg.tokens.visionStart },
      dtype: 'bf16', tensors: [...base, ...heads], train: { stage: 1, lvrId: golden.token_ids.lvr }, ...extra,
    });
    expect(() => emu.createTrainer(spec({ streamChunk: 10 }))).toThrow(/^createTrainer: 'streamChunk' applies to device 'cuda' only$/);
    expect(() => emu.createTrainer(spec({ device: 'cuda', streamChunk: 0 }))).toThrow(/streamChunk/);
  });
});
