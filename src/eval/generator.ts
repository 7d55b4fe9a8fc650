// THE SEAM between eval and the inference engine. Eval never touches the model: it builds one request per
// question and hands it to an EvalGenerator. `vreflect eval` obtains its generator from a GeneratorFactory
// given to makeEvalCommand() (src/cli/commands/eval.ts); tests pass a scripted fake.
//
// What a generator must do with a request (upstream's evaluation, docs/method.md §4.2, §12.5):
//  1. Read each image (a file path, or encoded bytes: JPEG/PNG/... from parquet, base64-decoded HR-Bench
//     cells, zip members). RGBA (and LA/P with transparency) is composited onto white, then converted to
//     RGB, as qwen-vl-utils does. An unreadable image: throw EvalItemError (the item becomes an error item).
//  2. Resize twice unless `singleResize`: first qwen-vl-utils' smart_resize with [minPixels, maxPixels]
//     (the eval limits: 3136..12845056, HR-Bench overridable), then the checkpoint processor's own
//     smart_resize with its preprocessor_config.json min/max_pixels (or `processorMinPixels` /
//     `processorMaxPixels` when set). With `singleResize` only the second (what `vreflect infer` does).
//  3. Build the Qwen2.5-VL chat prompt: default system prompt, one <|vision_start|><|image_pad|><|vision_end|>
//     per image in order, then `prompt` (see qwenChatPrompt in ./prompts for the exact text).
//  4. Decode: latentSteps = S >= 0 -> V-Reflection decoding with quota S per <|lvr_start|> (0 = plain
//     decoding with this model); latentSteps = null -> the base model's plain decoding (--base-model).
//     Greedy, the checkpoint's repetition penalty, eos <|im_end|>, at most maxNewTokens new tokens.
//  5. Return the text as `vreflect infer` prints it: special tokens kept, cut after the first <|im_end|>.
import type { ImageInput } from './types';

export interface EvalGenerateRequest {
  /** one or more images, in prompt order (BLINK has up to four) */
  images: ImageInput[];
  /** the user text exactly as upstream builds it; the generator adds the chat template and image tokens */
  prompt: string;
  /** first-stage (qwen-vl-utils) resize limits, in pixels */
  minPixels: number;
  maxPixels: number;
  /** skip the first stage and use only the processor's own limits */
  singleResize: boolean;
  /** second-stage limits instead of the checkpoint's preprocessor_config.json ones (--processor-min/max-pixels) */
  processorMinPixels?: number;
  processorMaxPixels?: number;
  /** latent quota per <|lvr_start|>; null = base model, plain decoding */
  latentSteps: number | null;
  maxNewTokens: number;
}

export interface EvalGenerator {
  generate(req: EvalGenerateRequest): Promise<{ text: string }>;
  /** frees the model; called once when eval is done */
  close?(): Promise<void>;
}

/** What the command knows about the model when it asks for a generator (once, lazily). */
export interface GeneratorSpec {
  model: string;
  baseModel: boolean;
  device: 'cpu' | 'cuda' | 'auto';
  dtype: 'auto' | 'fp32' | 'bf16';
  threads?: number;
  /** tokens per decoder forward of a prefill (--prefill-chunk; 0: the device's default) */
  prefillChunk?: number;
}

export type GeneratorFactory = (spec: GeneratorSpec) => Promise<EvalGenerator>;

/** Thrown by a generator for a problem of this one item (unreadable image, too many tokens): not fatal. */
export class EvalItemError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvalItemError';
  }
}
