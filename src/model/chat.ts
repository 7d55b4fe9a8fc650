// Prompt construction with Qwen2.5-VL's chat template (model.md §7.1-7.2) and the evaluator's output-text rules
// (method.md §12.5). The template output for one user turn is fixed, so it is written out here instead of
// running a Jinja engine; the golden tests pin it against transformers' apply_chat_template.
import type { Tokenizer } from './tokenizer';

export const DEFAULT_SYSTEM_PROMPT = 'You are a helpful assistant.';
export const IMAGE_PAD = '<|image_pad|>';
export const VIDEO_PAD = '<|video_pad|>';
const IM_END = '<|im_end|>';

export interface PromptSpec {
  /** user text; follows the image placeholder directly (no separator) */
  text: string;
  /**
   * vision tokens Nt = gh*gw/4 per image, in order (a single number for one image); undefined or [] for a
   * text-only prompt. The images come first in the user turn, then the text (content [image, ..., text]).
   */
  imageTokens?: number | readonly number[];
  /** appended verbatim after `<|im_start|>assistant\n` (e.g. `<|lvr_start|>`) */
  assistantPrefix?: string;
  /** system message; the template's default when omitted */
  system?: string;
}

export interface Prompt {
  /** rendered text with one `<|image_pad|>` per image (what apply_chat_template returns, plus the prefix) */
  text: string;
  /** token ids with the image pad expanded to `imageTokens` copies */
  ids: number[];
  /** index of the first image pad in `ids` (-1 without an image) */
  imageStart: number;
  /** index of each image's first pad in `ids` */
  imageStarts: number[];
  /** total number of image pads in `ids` */
  imageTokens: number;
}

function imageCounts(spec: PromptSpec): number[] {
  const n = spec.imageTokens;
  const counts = n === undefined ? [] : typeof n === 'number' ? [n] : [...n];
  for (const c of counts) if (!Number.isSafeInteger(c) || c < 1) throw new Error(`buildPrompt: imageTokens must be positive integers, got ${c}`);
  return counts;
}

/** apply_chat_template(add_generation_prompt=True) for one user turn, then the assistant prefix. */
export function renderPrompt(spec: PromptSpec): string {
  const system = spec.system ?? DEFAULT_SYSTEM_PROMPT;
  const image = `<|vision_start|>${IMAGE_PAD}<|vision_end|>`.repeat(imageCounts(spec).length);
  return (
    `<|im_start|>system\n${system}<|im_end|>\n` +
    `<|im_start|>user\n${image}${spec.text}<|im_end|>\n` +
    `<|im_start|>assistant\n${spec.assistantPrefix ?? ''}`
  );
}

/**
 * Renders and tokenizes the prompt. The processor's rule (model.md §7.2) replaces the i-th `<|image_pad|>` by
 * Nt_i copies before tokenizing; since added tokens are split off atomically, expanding each pad id after
 * tokenizing gives the same ids without tokenizing a string of Nt placeholders.
 */
export async function buildPrompt(tokenizer: Tokenizer, spec: PromptSpec): Promise<Prompt> {
  for (const [what, s] of [['prompt', spec.text], ['assistant prefix', spec.assistantPrefix ?? ''], ['system prompt', spec.system ?? '']])
    for (const pad of [IMAGE_PAD, VIDEO_PAD])
      if (s.includes(pad)) throw new Error(`the ${what} contains ${pad}, which is reserved for image/video placeholders`);
  const counts = imageCounts(spec);
  const text = renderPrompt(spec);
  const ids = await tokenizer.encode(text);
  if (!counts.length) return { text, ids, imageStart: -1, imageStarts: [], imageTokens: 0 };
  const padId = tokenizer.tokenToId(IMAGE_PAD);
  if (padId === undefined) throw new Error(`the tokenizer has no ${IMAGE_PAD} token`);
  const out: number[] = [];
  const starts: number[] = [];
  for (const id of ids) {
    if (id !== padId) {
      out.push(id);
      continue;
    }
    if (starts.length === counts.length) throw new Error(`tokenizing the prompt gave more ${IMAGE_PAD} than images`);
    starts.push(out.length);
    for (let k = counts[starts.length - 1]; k > 0; k--) out.push(padId);
  }
  if (starts.length !== counts.length) throw new Error(`tokenizing the prompt gave ${starts.length} ${IMAGE_PAD} for ${counts.length} images`);
  return { text, ids: out, imageStart: starts[0], imageStarts: starts, imageTokens: out.length - ids.length + counts.length };
}

/**
 * The evaluator's output text: cut right after the first `<|im_end|>` (kept), then collapse every run of
 * consecutive `<|lvr_start|>` (and of `<|im_start|>`) to one.
 */
export function finalizeOutputText(text: string): string {
  const end = text.indexOf(IM_END);
  const cut = end >= 0 ? text.slice(0, end + IM_END.length) : text;
  return cut.replace(/(?:<\|lvr_start\|>){2,}/g, '<|lvr_start|>').replace(/(?:<\|im_start\|>){2,}/g, '<|im_start|>');
}
