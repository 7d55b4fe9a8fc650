// The demo model's tokenizer files, in the shape Qwen2.5-VL ships them (tokenizer.json with Qwen2's normalizer,
// pre-tokenizer and byte-level decoder; tokenizer_config.json; chat_template.json), over a BPE trained on the
// demo's own corpus (src/demo/bpe.ts). The Qwen special tokens and V-Reflection's 4 LVR tokens follow the
// BPE vocabulary, in the released order.
import * as fs from 'fs';
import * as path from 'path';

import { AddedTokenEntry, QWEN25VL_CHAT_TEMPLATE, qwenTokenizerConfig } from '../model/qwen_tokenizer_files';
import { LVR_TOKENS } from '../model/tokenizer';
import { BpeModel, QWEN_SPLIT_PATTERN } from './bpe';

/** Qwen2.5-VL's special added tokens, in the released (id) order. */
export const QWEN_SPECIAL_TOKENS = [
  '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|object_ref_start|>', '<|object_ref_end|>',
  '<|box_start|>', '<|box_end|>', '<|quad_start|>', '<|quad_end|>', '<|vision_start|>', '<|vision_end|>',
  '<|vision_pad|>', '<|image_pad|>', '<|video_pad|>',
] as const;

export const ADDED_TOKENS: readonly string[] = [...QWEN_SPECIAL_TOKENS, ...LVR_TOKENS];

/** Ids of the added tokens: they follow the BPE vocabulary. */
export function addedTokenIds(bpe: BpeModel): Record<string, number> {
  const base = bpe.vocab.size;
  return Object.fromEntries(ADDED_TOKENS.map((t, i) => [t, base + i]));
}

const byteLevel = { add_prefix_space: false, trim_offsets: false, use_regex: false };

function addedEntry(content: string, id: number): AddedTokenEntry {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

export function tokenizerJson(bpe: BpeModel): Record<string, unknown> {
  const ids = addedTokenIds(bpe);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ADDED_TOKENS.map((t) => addedEntry(t, ids[t])),
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: QWEN_SPLIT_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', ...byteLevel },
      ],
    },
    post_processor: { type: 'ByteLevel', ...byteLevel },
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(bpe.vocab),
      merges: bpe.merges,
    },
  };
}

export function tokenizerConfigJson(bpe: BpeModel): Record<string, unknown> {
  const ids = addedTokenIds(bpe);
  return qwenTokenizerConfig(ADDED_TOKENS.map((t) => addedEntry(t, ids[t])), ADDED_TOKENS.slice(1));
}

export function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

export function writeTokenizerFiles(dir: string, bpe: BpeModel): void {
  writeJson(path.join(dir, 'tokenizer.json'), tokenizerJson(bpe));
  writeJson(path.join(dir, 'tokenizer_config.json'), tokenizerConfigJson(bpe));
  writeJson(path.join(dir, 'chat_template.json'), { chat_template: QWEN25VL_CHAT_TEMPLATE });
}
