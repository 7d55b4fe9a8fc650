// What the checkpoints we write ourselves (the benchmark's and the demo's) share with a released Qwen2.5-VL
// directory: the chat template and tokenizer_config.json's fixed settings. Kept in one place so the two writers
// cannot drift apart from each other or from model.md §7.
//
// The Qwen2.5-VL-Instruct chat template (model.md §7.1), verbatim model data.
export const QWEN25VL_CHAT_TEMPLATE =
  "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}" +
  "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
  "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}" +
  "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in " +
  "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}" +
  "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] " +
  "== 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}" +
  "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}" +
  "{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}" +
  "<|im_start|>assistant\n{% endif %}";

/** One entry of tokenizer.json's added_tokens (and, without the id, of added_tokens_decoder). */
export interface AddedTokenEntry {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** tokenizer_config.json as Qwen2.5-VL ships it, over the given added tokens and additional special tokens. */
export function qwenTokenizerConfig(added: AddedTokenEntry[], additionalSpecial: string[]): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  for (const { id, content, lstrip, normalized, rstrip, single_word, special } of added) {
    decoder[String(id)] = { content, lstrip, normalized, rstrip, single_word, special };
  }
  return {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: decoder,
    additional_special_tokens: additionalSpecial,
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
