// The GPU memory plan (issue #6 "Memory plan"): what a `--device cuda` run keeps on the GPU and in host memory,
// item by item, against the capacities; a run that cannot fit is refused before it starts, naming the flag to
// change. Pure arithmetic on the model's shapes (docs/architecture.md, "GPU memory plan", derives every figure).
import { formatBytes, GiB, MiB } from './units';
import { dacParams, headGemmParams, headParams, kvBytesPerToken, llmGemmParams, llmParams, ModelShape, visionMatrixParams, visionParams } from './model_shape';

export type Where = 'gpu' | 'host';
export type OptimizerStates = 'host' | 'gpu';

export interface PlanItem {
  what: string;
  where: Where;
  bytes: number;
  /** how the figure was computed, e.g. "2 B x 7.62e9 params" */
  formula: string;
}

export interface GpuPlan {
  kind: 'infer' | 'train-stage1' | 'train-stage2';
  model: string;
  /** the decisions the plan made (strategy, chunk sizes), one line each */
  notes: string[];
  items: PlanItem[];
  gpuBytes: number;
  hostBytes: number;
  gpuCapacity: number;
  hostCapacity: number;
  fits: boolean;
  /** why it does not fit, naming the flag to change (one line) */
  problem?: string;
  optimizerStates?: OptimizerStates;
  /** training: whether the decoder recomputes each layer in the backward (gradient checkpointing) */
  checkpointing?: boolean;
}

/** The CUDA context, module images and cudart state of one process (~0.5-0.8 GiB on an H100), rounded up. */
export const CONTEXT_BYTES = 1 * GiB;
/** cuBLASLt workspace and attention scratch (split-K partials, softmax statistics). */
export const WORKSPACE_BYTES = 256 * MiB;
/** Allocator rounding and fragmentation, as a share of everything else on the GPU. */
export const ALLOCATOR_MARGIN = 0.05;
/** Host memory the process needs besides the plan's buffers (Node, the data loader, tokenizer, staging). */
export const HOST_BASELINE_BYTES = 2 * GiB;
/** The H100 / A100 "80 GB" cards hold 81,559 MiB; the capacity assumed when no GPU is visible. */
export const DEFAULT_GPU_CAPACITY = 81559 * MiB;

const e9 = (n: number) => (n >= 1e8 ? `${(n / 1e9).toFixed(2)}e9` : n.toLocaleString('en-US'));

const sumWhere = (items: PlanItem[], where: Where) => items.filter((i) => i.where === where).reduce((a, i) => a + i.bytes, 0);

function finish(p: Omit<GpuPlan, 'gpuBytes' | 'hostBytes' | 'fits'>): GpuPlan {
  const items = [...p.items];
  const gpuRaw = sumWhere(items, 'gpu');
  items.push({ what: 'allocator margin', where: 'gpu', bytes: Math.ceil(gpuRaw * ALLOCATOR_MARGIN), formula: `${ALLOCATOR_MARGIN * 100}% of the GPU items` });
  items.push({ what: 'process baseline (Node, data loader, staging)', where: 'host', bytes: HOST_BASELINE_BYTES, formula: 'fixed' });
  const gpuBytes = sumWhere(items, 'gpu');
  const hostBytes = sumWhere(items, 'host');
  return { ...p, items, gpuBytes, hostBytes, fits: gpuBytes <= p.gpuCapacity && hostBytes <= p.hostCapacity };
}

// ---- inference ---------------------------------------------------------------------------------------------

export interface InferPlanInput {
  shape: ModelShape;
  /** merged visual tokens of the image (0: no image); the ViT sees 4x as many patches */
  imageTokens: number;
  /** text tokens of the prompt around the image */
  promptTokens: number;
  maxNewTokens: number;
  latentSteps: number;
  gpuCapacity: number;
  hostCapacity: number;
  /** the flag that limits the image size, named when the image is what does not fit */
  pixelsFlag?: string;
}

/**
 * Device bytes per ViT patch of one forward (native/cuda/model/gpu_vision_tower.cc allocates its buffers in one
 * arena per forward, freed when it returns; this mirrors that list, without the 256-B rounding of each buffer and
 * the window tables). Three regions are shared by buffers whose lifetimes do not overlap: gate 2Iv | bf16 pixels 2P
 * | the merger's fp32 output (4 x out_hidden per merged token = a quarter patch each); up 2Iv | fp32 patch
 * embeddings 4Dv; q|k|v 6Dv | the merger's bf16 input 2Dv. Then the fp32 residual stream 4Dv, bf16 normed 2Dv and
 * attention output 2Dv, the rotary tables 2 x 4 B x head_dim, the window slot 4 B and the raster order (4 B per
 * merged token). 32,245 B per patch for the 7B.
 */
export function vitBytesPerPatch(v: ModelShape['vision']): number {
  const Dv = v.hidden, Iv = v.intermediate, hd = Dv / v.heads, P = v.inChannels * v.temporalPatch * v.patch * v.patch;
  const u = v.merge * v.merge;
  const regions = Math.max(2 * Iv, 2 * P, (4 * v.outHidden) / u) + Math.max(2 * Iv, 4 * Dv) + Math.max(6 * Dv, 2 * Dv);
  return regions + 4 * Dv + 2 * Dv + 2 * Dv + 2 * 4 * hd + 4 + 4 / u;
}

/**
 * Device bytes per token of the decoder's prefill scratch (native/cuda/model/gpu_language_model.cc: one arena for
 * the largest call so far, kept between calls; K and V go straight into the cache): fp32 residual stream 4D, bf16
 * normed 2D, q|k|v 2(Dq + 2Dkv), attention output 2Dq, gate and up 2I + 2I (SwiGLU in place), M-RoPE tables
 * 2 x 4 B x head_dim, log-sum-exp 4 B x heads. 114,800 B for the 7B.
 */
export function llmPrefillBytesPerToken(t: ModelShape['text']): number {
  const D = t.hidden, I = t.intermediate, q = t.heads * t.headDim, kv = t.kvHeads * t.headDim;
  return 4 * D + 2 * D + 2 * (q + 2 * kv) + 2 * q + 2 * I + 2 * I + 2 * 4 * t.headDim + 4 * t.heads;
}

/** The chunks the session's automatic choice tries (native/cuda/model/gpu_session.h choose_prefill_chunk). */
const PREFILL_CHUNKS = [8192, 4096, 2048, 1024, 512, 256];

export function planInference(o: InferPlanInput): GpuPlan {
  const { text, vision } = o.shape;
  const P = llmParams(text), V = visionParams(vision);
  const patches = o.imageTokens * vision.merge * vision.merge;
  const promptLen = o.imageTokens + o.promptTokens;
  const cacheLen = promptLen + o.maxNewTokens + o.latentSteps;
  const fixed: PlanItem[] = [
    { what: 'LLM weights (bf16)', where: 'gpu', bytes: 2 * P, formula: `2 B x ${e9(P)} params` },
    { what: 'ViT + merger weights (bf16)', where: 'gpu', bytes: 2 * V, formula: `2 B x ${e9(V)} params` },
    { what: 'KV cache (bf16)', where: 'gpu', bytes: cacheLen * kvBytesPerToken(text), formula: `${cacheLen} tokens x ${kvBytesPerToken(text) / 1024} KiB` },
    { what: 'CUDA context', where: 'gpu', bytes: CONTEXT_BYTES, formula: 'fixed' },
    { what: 'cuBLASLt workspace + attention scratch', where: 'gpu', bytes: WORKSPACE_BYTES, formula: 'fixed' },
  ];
  if (patches > 0) {
    const vitPer = vitBytesPerPatch(vision);
    fixed.push({ what: 'ViT activations (one forward\'s buffers; flash attention: no score matrix)', where: 'gpu', bytes: patches * vitPer, formula: `${patches} patches x ${vitPer} B` });
    fixed.push({ what: 'vision features (fp32, until scattered into the prompt)', where: 'gpu', bytes: o.imageTokens * (4 * vision.outHidden + 4), formula: `${o.imageTokens} tokens x (${vision.outHidden} x 4 B + 4 B)` });
  }
  fixed.push({ what: 'prompt ids + input embeddings (fp32)', where: 'gpu', bytes: promptLen * (4 * text.hidden + 4), formula: `${promptLen} tokens x (${text.hidden} x 4 B + 4 B)` });
  const perToken = llmPrefillBytesPerToken(text);
  const logits = text.vocab * 4;
  const withChunk = (chunk: number): PlanItem[] => [
    ...fixed,
    { what: `LLM prefill activations (${chunk === promptLen ? 'whole prompt' : `chunks of ${chunk}`})`, where: 'gpu', bytes: chunk * perToken, formula: `${chunk} tokens x ${perToken} B` },
    { what: 'logits of the last position (fp32)', where: 'gpu', bytes: logits, formula: `${text.vocab} x 4 B` },
  ];
  const base = { kind: 'infer' as const, model: o.shape.name, gpuCapacity: o.gpuCapacity, hostCapacity: o.hostCapacity };
  const notes = [
    `bf16 weights and activations, fp32 residual stream and softmax statistics; ${promptLen} prompt tokens (${o.imageTokens} image tokens, ${patches} ViT patches), KV cache for ${cacheLen}`,
  ];
  let plan = finish({ ...base, notes: [...notes], items: withChunk(promptLen) });
  for (const chunk of PREFILL_CHUNKS) {
    if (plan.fits || chunk >= promptLen) continue;
    plan = finish({ ...base, notes: [...notes, `chunked prefill: ${chunk} tokens per chunk (the whole prompt does not fit)`], items: withChunk(chunk) });
  }
  if (plan.fits) return plan;
  const weights = 2 * (P + V) + CONTEXT_BYTES;
  const problem =
    weights > o.gpuCapacity
      ? `the ${o.shape.name} bf16 weights alone need ${formatBytes(weights)} but the GPU has ${formatBytes(o.gpuCapacity)}: use a GPU with more memory`
      : patches * vitBytesPerPatch(vision) > (o.gpuCapacity - weights) / 2
        ? `the ${patches}-patch image's ViT activations do not fit beside the weights: lower ${o.pixelsFlag ?? '--max-pixels'}`
        : `the KV cache for ${cacheLen} tokens does not fit beside the weights: lower --max-new-tokens or ${o.pixelsFlag ?? '--max-pixels'}`;
  return { ...plan, problem: `inference needs about ${formatBytes(plan.gpuBytes)} of GPU memory but ${formatBytes(o.gpuCapacity)} is available: ${problem}` };
}

// ---- training ----------------------------------------------------------------------------------------------

export interface TrainPlanInput {
  shape: ModelShape;
  stage: 1 | 2;
  /** tokens of the largest micro-batch (packing: 4 x 4096) */
  tokens: number;
  /** merged visual tokens in it (the ViT runs on 4x as many patches) */
  visualTokens: number;
  optimizerStates: OptimizerStates | 'auto';
  gpuCapacity: number;
  hostCapacity: number;
  /** rows of logits the fused cross-entropy handles at once */
  ceChunk?: number;
  /** --gradient-checkpointing on the GPU (default on): auto = off when the plan without recomputation fits */
  checkpointing?: 'on' | 'off' | 'auto';
}

/** Rows per MLP pass of the training decoder (native GpuTrainLLM's default, as the CPU TrainLLM's). */
export const DECODER_MLP_CHUNK = 1024;

export interface ScratchPiece {
  what: string;
  bytes: number;
  /** the plan item the piece is counted in */
  group: 'inputs' | 'kept' | 'tables' | 'backward';
}

/**
 * The training decoder's activation arena (native/cuda/model/gpu_train_llm.cc `reserve`), piece by piece in its
 * carve order (the arena rounds each piece up to 256 B; the plan counts them unrounded): the layer inputs and the
 * final residual fp32; the final norm's rstd, the M-RoPE tables, the sample bounds (+1 int), the fp32 norm output;
 * then what a layer's backward reads - ONE set that the backward recomputes into (checkpointing; gate / up one
 * MLP chunk's rows) or one set per layer that the forward keeps (no checkpointing; gate / up all T rows): rstd1,
 * rstd2, x2 fp32, lse, h1, h2, q|k|v, attention output, gate, up bf16; the SwiGLU chunk; the backward's gradient
 * buffers. 7B, T = 4096: 4.2 GB with checkpointing, 18.7 GB without.
 */
export function decoderScratchPieces(t: ModelShape['text'], T: number, checkpointing: boolean, mlpChunk = DECODER_MLP_CHUNK): ScratchPiece[] {
  const D = t.hidden, F = t.intermediate, hd = t.headDim, Dq = t.heads * hd, Nqkv = Dq + 2 * t.kvHeads * hd;
  const C = Math.min(T, mlpChunk), gu = checkpointing ? C : T;
  const p = (what: string, bytes: number, group: ScratchPiece['group']): ScratchPiece => ({ what, bytes, group });
  const kept = (layer: string): ScratchPiece[] => [
    p(`${layer} rstd1`, 4 * T, 'kept'), p(`${layer} rstd2`, 4 * T, 'kept'), p(`${layer} x2`, 4 * T * D, 'kept'),
    p(`${layer} lse`, 4 * t.heads * T, 'kept'), p(`${layer} h1`, 2 * T * D, 'kept'), p(`${layer} h2`, 2 * T * D, 'kept'),
    p(`${layer} q|k|v`, 2 * T * Nqkv, 'kept'), p(`${layer} attention output`, 2 * T * Dq, 'kept'),
    p(`${layer} gate`, 2 * gu * F, 'kept'), p(`${layer} up`, 2 * gu * F, 'kept'),
  ];
  return [
    p('layer inputs + final residual', 4 * (t.layers + 1) * T * D, 'inputs'),
    p('final rstd', 4 * T, 'tables'), p('M-RoPE cos', 4 * T * hd, 'tables'), p('M-RoPE sin', 4 * T * hd, 'tables'),
    p('sample bounds', 4 * (T + 2), 'tables'), p('norm output', 4 * T * D, 'tables'),
    ...(checkpointing ? kept('recomputed layer') : Array.from({ length: t.layers }, (_, i) => kept(`layer ${i}`)).flat()),
    p('SwiGLU chunk', 2 * C * F, 'tables'),
    p('dy', 4 * T * D, 'backward'), p('dprev', 4 * T * D, 'backward'), p('dx2', 4 * T * D, 'backward'), p('dh', 4 * T * D, 'backward'),
    p('dF chunk', 4 * C * F, 'backward'), p('datt', 4 * T * Dq, 'backward'), p('bf16 gradient', 2 * Math.max(T * D, T * Dq, C * F), 'backward'),
    p('dgate chunk', 2 * C * F, 'backward'), p('dup chunk', 2 * C * F, 'backward'), p('dq|k|v', 2 * T * Nqkv, 'backward'),
  ];
}

/** The decoder's items (decoderScratchPieces summed per group): what GpuTrainLLM's arena holds, to the byte. */
export function decoderActivationItems(t: ModelShape['text'], T: number, checkpointing: boolean, mlpChunk = DECODER_MLP_CHUNK): PlanItem[] {
  const pieces = decoderScratchPieces(t, T, checkpointing, mlpChunk);
  const sum = (g: ScratchPiece['group']) => pieces.filter((x) => x.group === g).reduce((a, x) => a + x.bytes, 0);
  const kept = sum('kept');
  return [
    { what: 'decoder layer inputs + final residual (fp32)', where: 'gpu', bytes: sum('inputs'), formula: `(${t.layers} + 1) x ${T} tokens x ${t.hidden} x 4 B` },
    checkpointing
      ? { what: 'decoder: one layer recomputed for its backward (x2 fp32; normed inputs, q|k|v, attention, gate / up of one MLP chunk bf16)', where: 'gpu', bytes: kept, formula: `${kept} B` }
      : { what: 'decoder: every layer\'s activations kept for the backward (x2 fp32; normed inputs, q|k|v, attention, gate / up bf16)', where: 'gpu', bytes: kept, formula: `${t.layers} layers x ${kept / t.layers} B` },
    { what: 'decoder tables + forward scratch (M-RoPE, norm output, SwiGLU chunk)', where: 'gpu', bytes: sum('tables'), formula: `${T} tokens, MLP chunk ${Math.min(T, mlpChunk)}` },
    { what: 'decoder backward transients (fp32 and bf16 gradient buffers)', where: 'gpu', bytes: sum('backward'), formula: `${T} tokens, MLP chunk ${Math.min(T, mlpChunk)}` },
  ];
}

/** Bytes kept for the backward of one micro-batch: the decoder's arena (exact) + the step's other activations. */
export function trainActivationItems(o: TrainPlanInput, checkpointing = o.checkpointing !== 'off'): PlanItem[] {
  const { text: t, vision: v } = o.shape;
  const T = o.tokens, D = t.hidden;
  const ce = Math.min(T, o.ceChunk ?? 1024);
  const patches = o.visualTokens * v.merge * v.merge;
  const headKV = o.stage === 1 ? 4 : 6; // K, V (+ their gradients); stage 2 adds the frozen teacher's K, V
  return [
    ...decoderActivationItems(t, T, checkpointing),
    { what: 'cross-entropy logits chunk + gradient (fp32)', where: 'gpu', bytes: 2 * ce * t.vocab * 4, formula: `2 x ${ce} rows x ${t.vocab} x 4 B` },
    { what: 'frozen ViT forward (its buffers, no grad)', where: 'gpu', bytes: patches * vitBytesPerPatch(v), formula: `${patches} patches x ${vitBytesPerPatch(v)} B` },
    { what: 'visual features (bf16, LLM input and BCM/DAC keys)', where: 'gpu', bytes: o.visualTokens * v.outHidden * 2, formula: `${o.visualTokens} tokens x ${v.outHidden} x 2 B` },
    { what: `${o.stage === 1 ? 'BCM' : 'teacher BCM + student DAC'} keys/values (+ gradients)`, where: 'gpu', bytes: headKV * o.visualTokens * D * 2, formula: `${headKV} x ${o.visualTokens} keys x ${D} x 2 B` },
  ];
}

/** Values per streamed chunk of the host optimizer step (native GpuTrainParams::kDefaultChunkElems: 128 MiB of fp32). */
export const STREAM_CHUNK_VALUES = 2 ** 25;

/**
 * The parameter counts the trainer's storages are made of: trainable (stage 1: LLM + BCM; stage 2: LLM + DAC),
 * their GEMM weights, and the stage-2 frozen BCM teacher.
 */
export function trainerParamCounts(shape: ModelShape, stage: 1 | 2) {
  const t = shape.text;
  const trainable = llmParams(t) + (stage === 1 ? headParams(t) : dacParams(t));
  const gemm = llmGemmParams(t) + headGemmParams(t);
  const frozen = stage === 2 ? headParams(t) : 0;
  const frozenGemm = stage === 2 ? headGemmParams(t) : 0;
  // Non-GEMM tensors are read in fp32 by the kernels; a tied embedding is a GEMM weight (lm_head) AND gathered in fp32.
  const f32Copies = trainable - gemm + (t.tieEmbeddings ? t.vocab * t.hidden : 0);
  return { trainable, gemm, frozen, frozenGemm, f32Copies };
}

/**
 * The parameter and optimizer-state items of one strategy: exactly the storages the GPU trainer allocates
 * (native/cuda/model/gpu_train_params.h; test/golden_train/train_memory_plan.test.ts checks them against the
 * trainer's own byte counts on a tiny model). Device: the parameter arena per placement, the frozen ViT (bf16
 * matrices, fp32 vectors). Host: the ParamStore's arrays and, under host, the pinned staging.
 */
export function stateItems(o: TrainPlanInput, mode: OptimizerStates, chunkValues = STREAM_CHUNK_VALUES): PlanItem[] {
  const { vision: v } = o.shape;
  const c = trainerParamCounts(o.shape, o.stage);
  const P = c.trainable, all = c.trainable + c.frozen;
  const vm = visionMatrixParams(v), vv = visionParams(v) - vm;
  const frozen: PlanItem[] = [{ what: 'frozen ViT + merger (bf16 matrices, fp32 vectors)', where: 'gpu', bytes: 2 * vm + 4 * vv, formula: `2 B x ${e9(vm)} + 4 B x ${e9(vv)} params` }];
  const p = `${e9(P)} trainable params`;
  const shadows: PlanItem = { what: 'bf16 shadows of the GEMM weights', where: 'gpu', bytes: 2 * c.gemm, formula: `2 B x ${e9(c.gemm)} GEMM params` };
  const grads: PlanItem = { what: 'gradients (fp32, accumulated over micro-steps)', where: 'gpu', bytes: 4 * P, formula: `4 B x ${p}` };
  switch (mode) {
    case 'host': {
      const chunk = Math.min(chunkValues, P);
      const align64 = (b: number) => Math.ceil(b / 64) * 64; // each half of a slot starts 64-byte aligned
      if (c.frozen) frozen.push({ what: 'frozen BCM teacher (bf16 GEMM weights, fp32 vectors)', where: 'gpu', bytes: 2 * c.frozenGemm + 4 * (c.frozen - c.frozenGemm), formula: `2 B x ${e9(c.frozenGemm)} + 4 B x ${e9(c.frozen - c.frozenGemm)} params` });
      return [
        shadows,
        { what: 'fp32 copies of the non-GEMM tensors (norms, biases, queries, token embedding)', where: 'gpu', bytes: 4 * c.f32Copies, formula: `4 B x ${e9(c.f32Copies)} params` },
        grads,
        ...frozen,
        { what: `fp32 master weights${c.frozen ? ' (+ the frozen teacher)' : ''}`, where: 'host', bytes: 4 * all, formula: `4 B x ${e9(all)} params` },
        { what: 'AdamW exp_avg + exp_avg_sq (fp32)', where: 'host', bytes: 8 * P, formula: `8 B x ${p}` },
        { what: 'gradient / new-weight staging (pinned, 2 slots)', where: 'host', bytes: 2 * (align64(4 * chunk) + align64(2 * chunk)), formula: `2 x (4 + 2) B x ${chunk} values` },
      ];
    }
    case 'gpu':
      if (c.frozen) frozen.push({ what: 'frozen BCM teacher (fp32 + bf16 shadows of its GEMM weights)', where: 'gpu', bytes: 4 * c.frozen + 2 * c.frozenGemm, formula: `4 B x ${e9(c.frozen)} + 2 B x ${e9(c.frozenGemm)} params` });
      return [
        { what: 'fp32 master weights', where: 'gpu', bytes: 4 * P, formula: `4 B x ${p}` },
        grads,
        { what: 'AdamW exp_avg + exp_avg_sq (fp32)', where: 'gpu', bytes: 8 * P, formula: `8 B x ${p}` },
        shadows,
        ...frozen,
        { what: 'fp32 weights on the host (load target, checkpoint source)', where: 'host', bytes: 4 * all, formula: `4 B x ${e9(all)} params` },
      ];
  }
}

const STRATEGY: Record<OptimizerStates, string> = {
  host: 'optimizer states in host memory: bf16 GEMM shadows, fp32 copies of the other tensors and fp32 gradients on the GPU; fp32 master weights and AdamW moments on the host; the AdamW step (torch maths, fp32, the CPU trainer\'s code) on the host, the gradients streamed down and the new weights up through two pinned chunks',
  gpu: 'everything on the GPU: fp32 master weights, fp32 gradients, AdamW moments and bf16 shadows of the GEMM weights; the host keeps the fp32 weights for loading and checkpoints',
};

function planWith(o: TrainPlanInput, mode: OptimizerStates, checkpointing: boolean): GpuPlan {
  const items = [
    ...stateItems(o, mode),
    ...trainActivationItems(o, checkpointing),
    { what: 'CUDA context', where: 'gpu' as const, bytes: CONTEXT_BYTES, formula: 'fixed' },
    { what: 'cuBLASLt workspace + attention scratch', where: 'gpu' as const, bytes: WORKSPACE_BYTES, formula: 'fixed' },
  ];
  return finish({
    kind: o.stage === 1 ? 'train-stage1' : 'train-stage2',
    model: o.shape.name,
    notes: [
      STRATEGY[mode],
      `${checkpointing ? 'per-layer activation checkpointing (the backward recomputes each decoder layer)' : 'no activation checkpointing (every decoder layer\'s activations kept)'}; frozen ViT in bf16, forward only; micro-batch of ${o.tokens} tokens (${o.visualTokens} visual)`,
      'data parallelism (next issue): the all-reduce of the fp32 gradients slots in between the last micro-step of gradient accumulation and the optimizer step',
    ],
    items,
    gpuCapacity: o.gpuCapacity,
    hostCapacity: o.hostCapacity,
    optimizerStates: mode,
    checkpointing,
  });
}

/**
 * The training plan. `auto` placement takes the first strategy that fits: everything on the GPU, else optimizer
 * states in host memory (both are torch's exact AdamW). Within a placement, `auto` checkpointing takes no
 * recomputation when that plan fits (same margins: the allocator margin, the context, the workspace), else
 * recomputation - so the placement is decided first (a gpu placement with recomputation is preferred over a host
 * one without: the host step moves every gradient over PCIe).
 */
export function planTraining(o: TrainPlanInput): GpuPlan {
  const modes: OptimizerStates[] = o.optimizerStates === 'auto' ? ['gpu', 'host'] : [o.optimizerStates];
  const ckpt = o.checkpointing ?? 'on';
  const choices = ckpt === 'auto' ? [false, true] : [ckpt === 'on'];
  let last: GpuPlan | undefined;
  for (const mode of modes)
    for (const c of choices) {
      last = planWith(o, mode, c);
      if (last.fits) return last;
    }
  return explain(last!, o);
}

function explain(p: GpuPlan, o: TrainPlanInput): GpuPlan {
  if (p.fits) return p;
  const mode = p.optimizerStates!;
  const gb = formatBytes;
  const head = `${p.kind} with --optimizer-states ${mode} needs ${gb(p.gpuBytes)} of GPU memory (${gb(o.gpuCapacity)} available) and ${gb(p.hostBytes)} of host memory (${gb(o.hostCapacity)} available)`;
  const stateGpu = sumWhere(stateItems(o, mode), 'gpu');
  const withRecompute = p.checkpointing ? undefined : planWith(o, mode, true);
  let why: string;
  // The GPU-side state first: when it cannot fit, the placement is the thing to change, whatever the host holds.
  if (stateGpu + CONTEXT_BYTES > o.gpuCapacity) {
    const alternatives = (['host', 'gpu'] as OptimizerStates[]).filter((m) => m !== mode).map((m) => {
      const q = planWith(o, m, p.checkpointing ?? true);
      return `--optimizer-states ${m} needs ${gb(q.gpuBytes)} GPU + ${gb(q.hostBytes)} host${q.fits ? ' (fits)' : ''}`;
    });
    why = `weights, gradients and optimizer states alone exceed the GPU: ${alternatives.join('; ')}`;
  } else if (p.hostBytes > o.hostCapacity) {
    why = mode === 'host'
      ? 'the host cannot hold the fp32 master weights and AdamW moments: use a host with more memory, or a GPU large enough for --optimizer-states gpu'
      : 'the host cannot hold the fp32 weights: use a host with more memory';
  } else if (withRecompute?.fits) {
    why = `every decoder layer's activations (--gradient-checkpointing off) do not fit; with recomputation it needs ${gb(withRecompute.gpuBytes)} (fits): pass --gradient-checkpointing auto or on`;
  } else {
    why = 'the activations of the largest micro-batch do not fit: lower --image-max-pixels, or pass --enable-data-packing false with a smaller --per-device-batch-size';
  }
  return { ...p, problem: `${head}: ${why}` };
}
