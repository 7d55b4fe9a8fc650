// The benchmark checkpoint's tokenizer must be the stand-in of test/golden/README.md §6 (built there with the
// tokenizers library: drop added tokens >= 151665, addSpecialTokens the four LVR tokens), and encode the
// model.md §7.3 vectors; the chat template must be the one the golden generator wrote.
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from 'tokenizers';

import {
  generationConfigJson, LVR_TOKENS, preprocessorConfigJson, QWEN25VL_CHAT_TEMPLATE, qwen25vlTokenizerJson, qwen3TokenizerSource, tokenizerConfigJson,
} from '../../../src/bench/checkpoint_files';

const source = fs.readFileSync(qwen3TokenizerSource(), 'utf8');
const ours = qwen25vlTokenizerJson(source);
const oursTk = Tokenizer.fromString(JSON.stringify(ours));

function readmeStandIn(): Tokenizer {
  const t = JSON.parse(source);
  t.added_tokens = t.added_tokens.filter((a: { id: number }) => a.id < 151665);
  const tk = Tokenizer.fromString(JSON.stringify(t));
  tk.addSpecialTokens([...LVR_TOKENS]);
  return tk;
}

const ids = async (tk: Tokenizer, s: string) => (await tk.encode(s, null, { addSpecialTokens: false })).getIds();

describe('benchmark checkpoint text files', () => {
  test('LVR tokens at 151665..151668, Qwen3 extras gone', () => {
    expect(LVR_TOKENS.map((t) => oursTk.tokenToId(t))).toEqual([151665, 151666, 151667, 151668]);
    expect(oursTk.tokenToId('<think>')).toBeNull();
    expect(oursTk.getVocabSize(true)).toBe(151669);
  });

  test('same ids as the README recipe built with the tokenizers library', async () => {
    const ref = readmeStandIn();
    const texts = [
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|><|vision_end|>Hi?<|im_end|>\n',
      '<|lvr_start|><|lvr|><|lvr|><|lvr_latent_end|> text <|lvr_end|><think></think><tool_call>',
      'Hello world! 12345 你好 🙂',
    ];
    for (const s of texts) expect(await ids(oursTk, s)).toEqual(await ids(ref, s));
    expect(await oursTk.decode(await ids(oursTk, texts[1]), true)).toBe(await ref.decode(await ids(ref, texts[1]), true));
  });

  test('model.md §7.3 vectors', async () => {
    expect(await ids(oursTk, 'Hello world! 12345 你好')).toEqual([9707, 1879, 0, 220, 16, 17, 18, 19, 20, 220, 108386]);
    expect(await ids(oursTk, "don't  stop\n\nnow")).toEqual([15007, 944, 220, 2936, 271, 3328]);
    expect(await ids(oursTk, 'A. cat\nB. dog')).toEqual([32, 13, 8251, 198, 33, 13, 5562]);
  });

  test('chat template equals the golden checkpoint\'s (written by the Python generator)', () => {
    const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'golden', 'models', 'tiny-flat', 'chat_template.json'), 'utf8'));
    expect(QWEN25VL_CHAT_TEMPLATE).toBe(golden.chat_template);
  });

  test('tokenizer_config lists every added token with its id and the released settings', () => {
    const c = tokenizerConfigJson(ours) as any;
    expect(c.added_tokens_decoder['151645'].content).toBe('<|im_end|>');
    expect(c.added_tokens_decoder['151668']).toEqual({ content: '<|lvr_end|>', lstrip: false, normalized: false, rstrip: false, single_word: false, special: true });
    expect(c.additional_special_tokens).toContain('<|lvr_start|>');
    expect(c.additional_special_tokens).not.toContain('<tool_call>');
    expect([c.eos_token, c.pad_token, c.bos_token, c.tokenizer_class]).toEqual(['<|im_end|>', '<|endoftext|>', null, 'Qwen2Tokenizer']);
  });

  test('processor and generation configs carry the released values (model.md §3, §8.1)', () => {
    const p = preprocessorConfigJson() as any;
    expect([p.min_pixels, p.max_pixels, p.patch_size, p.merge_size, p.temporal_patch_size]).toEqual([3136, 12845056, 14, 2, 2]);
    expect(generationConfigJson()).toEqual({ bos_token_id: 151643, pad_token_id: 151643, do_sample: true, eos_token_id: [151645, 151643], repetition_penalty: 1.05, temperature: 1e-6 });
  });

  test('a source with unexpected ids is refused', () => {
    const t = JSON.parse(source);
    t.added_tokens = t.added_tokens.filter((a: { id: number }) => a.id < 151660);
    expect(() => qwen25vlTokenizerJson(JSON.stringify(t))).toThrow(/end at 151664/);
    expect(() => qwen25vlTokenizerJson('{}')).toThrow(/no added_tokens/);
  });
});
