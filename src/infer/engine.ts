// The inference engine as TS sees it: a checkpoint directory loaded into the native addon, plus tokenizer,
// chat template, preprocessing and output-text rules. `vreflect infer` and `vreflect eval` both run through it.
import * as path from 'path';

import { loadModelConfig, ModelConfig } from '../model/config';
import { openCheckpoint } from '../model/checkpoint';
import { loadTokenizer, Tokenizer } from '../model/tokenizer';
import { buildPrompt, finalizeOutputText } from '../model/chat';
import { loadGenerationConfig, GenerationConfig } from '../model/generation_config';
import { decodeImage } from '../image/decode';
import { resizeBicubic } from '../image/native_image';
import { preprocessRgb, PreprocessedImage } from '../image/preprocess';
import { smartResize } from '../image/smart_resize';
import { loadAddon } from '../native/addon';
import type { Device } from '../plan/preflight';
import { UserError } from '../util/errors';

export type ComputeDType = 'fp32' | 'bf16';

export interface EngineOptions {
  dtype?: ComputeDType | 'auto';
  threads?: number;
  /** where the model runs (resolved --device; default cpu). cuda: bf16 GEMM / attention operands, fp32 accumulation */
  device?: Device;
  /**
   * tokens per decoder forward of a prefill (chunked prefill; --prefill-chunk). 0 / unset: the CPU prefills the
   * whole prompt; CUDA the whole prompt when its activations fit the free GPU memory, else the largest power of
   * two that fits (native/cuda/model/gpu_session.cc)
   */
  prefillChunk?: number;
}

export interface RunRequest {
  image?: string | Buffer; // one image; none: a text-only prompt
  images?: (string | Buffer)[]; // several images, in prompt order (eval: BLINK has up to four)
  // Upstream eval's first resize (qwen-vl-utils smart_resize + Pillow bicubic with these limits), applied before
  // the processor's own smart_resize. `vreflect infer` does only the processor's (one resize).
  preResize?: { minPixels: number; maxPixels: number };
  prompt: string;
  assistantPrefix?: string;
  latentSteps: number; // quota per <|lvr_start|>; 0 = plain decoding
  maxNewTokens: number;
  repetitionPenalty?: number; // default: the checkpoint's generation_config (else 1.0)
  minPixels?: number;
  maxPixels?: number;
  /** refuse larger images before decoding (default: Pillow's decompression-bomb limit) */
  maxImagePixels?: number;
  captureAttention?: boolean;
  allLogits?: boolean; // keep logits/hidden of every prompt position (tests)
  prefillChunk?: number; // overrides EngineOptions.prefillChunk for this run
  keepStepLogits?: boolean;
  /** called every ~200 ms while the prefill runs, with ViT blocks + LLM layers done / total */
  onPrefillProgress?: (done: number, total: number) => void;
}

export interface RunTimings {
  preprocess_ms: number;
  vision_ms: number;
  prefill_ms: number; // inputs ready -> first token's logits, ViT included
  decode_ms_per_token: number;
}

export interface RunResult {
  text: string;
  token_ids: number[];
  prompt_tokens: number;
  latent_steps: number;
  timings: RunTimings;
  image?: PreprocessedImage; // the first image
  images: PreprocessedImage[];
  attention: Float32Array[];
  promptIds: Int32Array;
  prefill: {
    logits: Float32Array; hidden: Float32Array; visionFeatures?: Float32Array; positions: Int32Array; ropeDelta: number;
    /** tokens per decoder forward the prefill used (the prompt length when it was not chunked) */
    prefillChunk: number;
    /** CUDA: device bytes of the prefill's buffers (the memory plan's activation items, src/plan/gpu_memory.ts) */
    deviceBytes?: { vit: number; llm: number; prompt: number; features: number };
  };
  stepLogits?: Float32Array;
  stopReason: string;
}

/** A prefill chunk: an integer >= 0 (0: the device's default), else a one-line UserError. */
function checkPrefillChunk(n: number | undefined): number {
  if (n === undefined) return 0;
  if (!Number.isInteger(n) || n < 0) throw new UserError(`prefill chunk must be an integer >= 0 (0: automatic), got ${n}`);
  return n;
}

/** Picks the compute precision: explicit, else bf16 when the checkpoint is bf16, else fp32. */
export function chooseDtype(requested: EngineOptions['dtype'], weightDtypes: Set<string>): ComputeDType {
  if (requested === 'fp32' || requested === 'bf16') return requested;
  return weightDtypes.has('BF16') && !weightDtypes.has('F32') ? 'bf16' : 'fp32';
}

export class Engine {
  private constructor(
    readonly dir: string,
    readonly config: ModelConfig,
    readonly tokenizer: Tokenizer,
    readonly generation: GenerationConfig,
    readonly dtype: ComputeDType,
    private readonly native: any,
    readonly loadMs: number,
    readonly device: Device,
    /** what runs the model: "cpu", the GPU's name, or "CUDA emulator (CPU)" (the emulator addon) */
    readonly deviceName: string,
    private readonly prefillChunk: number,
  ) {}

  static async load(dir: string, opts: EngineOptions = {}): Promise<Engine> {
    const t0 = Date.now();
    const abs = path.resolve(dir);
    const config = loadModelConfig(abs);
    const ckpt = openCheckpoint(abs, config);
    const tokenizer = await loadTokenizer(abs, config);
    const generation = loadGenerationConfig(abs);
    const device = opts.device ?? 'cpu';
    const prefillChunk = checkPrefillChunk(opts.prefillChunk);
    // The CUDA path has one precision: bf16 operands, fp32 accumulation and residual stream.
    if (device === 'cuda' && opts.dtype === 'fp32')
      throw new UserError('--dtype fp32 runs on the CPU only: the CUDA path computes in bf16 (fp32 accumulation); use --device cpu or --dtype bf16');
    const dtype = device === 'cuda' ? 'bf16' : chooseDtype(opts.dtype, new Set(ckpt.tensors.map((t) => t.dtype)));
    const addon = loadAddon();
    if (opts.threads) addon.setThreads(opts.threads);
    const native = await addon.loadModel({
      config: {
        text: config.text,
        vision: config.vision,
        imageTokenId: config.tokens.image,
        visionStartTokenId: config.tokens.visionStart,
      },
      dtype,
      device,
      tensors: ckpt.tensors,
    });
    return new Engine(abs, config, tokenizer, generation, dtype, native, Date.now() - t0, device, String(native.deviceName ?? device), prefillChunk);
  }

  /** Token id of a special token by its text, or -1 when the tokenizer lacks it. */
  tokenId(text: string): number {
    return this.tokenizer.tokenToId(text) ?? -1;
  }

  /** Decode (RGBA onto white), optionally the eval's first resize, then the processor's smart_resize. */
  private async prepareImage(input: string | Buffer, req: RunRequest): Promise<PreprocessedImage> {
    const pp = this.config.preprocess;
    const name = typeof input === 'string' ? input : '<image buffer>';
    try {
      const img = await decodeImage(input, { name, maxInputPixels: req.maxImagePixels });
      let { rgb, width, height } = img;
      if (req.preResize) {
        const [h, w] = smartResize(height, width, { factor: pp.patch * pp.merge, ...req.preResize });
        if (h !== height || w !== width) {
          rgb = resizeBicubic(rgb, width, height, 3, w, h);
          width = w;
          height = h;
        }
      }
      const r = await preprocessRgb(rgb, width, height, {
        minPixels: req.minPixels ?? pp.minPixels,
        maxPixels: req.maxPixels ?? pp.maxPixels,
        mean: pp.mean,
        std: pp.std,
        rescale: pp.rescale,
        patch: pp.patch,
        merge: pp.merge,
        temporalPatch: pp.temporalPatch,
      });
      r.original = { width: img.width, height: img.height };
      r.mode = img.mode;
      return r;
    } catch (e) {
      const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
      throw new UserError(msg.includes(name) ? msg : `image ${name}: ${msg}`);
    }
  }

  async run(req: RunRequest): Promise<RunResult> {
    if (!req.prompt || !req.prompt.trim()) throw new UserError('the prompt is empty');
    const t0 = Date.now();
    const inputs = req.images ?? (req.image !== undefined ? [req.image] : []);
    const images: PreprocessedImage[] = [];
    for (const input of inputs) images.push(await this.prepareImage(input, req));
    const prompt = await buildPrompt(this.tokenizer, {
      text: req.prompt,
      imageTokens: images.map((im) => (im.grid[0] * im.grid[1] * im.grid[2]) / 4),
      assistantPrefix: req.assistantPrefix ?? '',
    });
    const ids = Int32Array.from(prompt.ids);
    const maxCtx = this.config.text.maxPositionEmbeddings;
    if (maxCtx && ids.length > maxCtx)
      throw new UserError(`the prompt has ${ids.length} tokens, more than the context length ${maxCtx}`);
    const preprocessMs = Date.now() - t0;

    const session = this.native.createSession();
    const t1 = Date.now();
    const prefilling = session.prefill({
      ids,
      pixelValues: images.length ? concatFloat32(images.map((im) => im.pixelValues)) : undefined,
      grids: images.length ? images.map((im) => im.grid) : undefined,
      allLogits: !!req.allLogits,
      prefillChunk: req.prefillChunk === undefined ? this.prefillChunk : checkPrefillChunk(req.prefillChunk),
    });
    let timer: NodeJS.Timeout | undefined;
    if (req.onPrefillProgress) {
      const report = req.onPrefillProgress;
      timer = setInterval(() => {
        const p = session.progress;
        if (p.total > 0) report(p.done, p.total);
      }, 200);
    }
    let pre;
    try {
      pre = await prefilling;
    } finally {
      if (timer) clearInterval(timer);
    }
    const prefillMs = Date.now() - t1;

    const lvrStart = this.tokenId('<|lvr_start|>');
    const imEnd = this.tokenId('<|im_end|>');
    const gen = await session.generate({
      maxNewTokens: req.maxNewTokens,
      latentSteps: req.latentSteps,
      repetitionPenalty: req.repetitionPenalty ?? this.generation.repetitionPenalty,
      eosIds: [imEnd], // upstream's eval passes <|im_end|> as the only eos
      lvrStartId: lvrStart,
      captureAttention: !!req.captureAttention,
      keepStepLogits: !!req.keepStepLogits,
    });
    const text = finalizeOutputText(this.tokenizer.decode(gen.ids));
    return {
      text,
      token_ids: gen.ids,
      prompt_tokens: ids.length,
      latent_steps: gen.latentStepsRun,
      timings: {
        preprocess_ms: preprocessMs,
        vision_ms: pre.visionMs,
        prefill_ms: prefillMs,
        decode_ms_per_token: gen.decodeForwards ? gen.decodeMs / gen.decodeForwards : 0,
      },
      image: images[0],
      images,
      attention: gen.attention,
      promptIds: ids,
      prefill: pre,
      stepLogits: gen.stepLogits,
      stopReason: gen.stopReason,
    };
  }
}

function concatFloat32(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
