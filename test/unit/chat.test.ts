// Prompt text and ids against model.md §7.2 (transformers' apply_chat_template + processor), the golden
// tokenizer vectors and the golden decoding cases (prompt_text / input_ids made by transformers on the tiny
// checkpoints); output-text rules against the cases' output_text (method.md §12.5).
import * as fs from 'fs';
import * as path from 'path';

import { buildPrompt, finalizeOutputText, renderPrompt } from '../../src/model/chat';
import { loadTokenizer } from '../../src/model/tokenizer';
import { qwen25StandIn } from './fixtures/qwen_stand_in';

const GOLDEN = path.join(__dirname, '../golden');
const PROMPT_7_2 =
  '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>' +
  'What is shown here? Answer briefly.<|im_end|>\n<|im_start|>assistant\n';

describe('chat template', () => {
  test('model.md §7.2 string', () => {
    expect(renderPrompt({ text: 'What is shown here? Answer briefly.', imageTokens: 176 })).toBe(PROMPT_7_2);
  });

  test('model.md §7.2 ids, image pad expanded to 176 copies', async () => {
    const p = await buildPrompt(qwen25StandIn(), { text: 'What is shown here? Answer briefly.', imageTokens: 176 });
    const want = [
      151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198,
      151644, 872, 198, 151652, ...new Array(176).fill(151655), 151653,
      3838, 374, 6839, 1588, 30, 21806, 26753, 13, 151645, 198,
      151644, 77091, 198,
    ];
    expect(p.ids).toEqual(want);
    expect(p.imageStart).toBe(15);
    expect(p.text).toBe(PROMPT_7_2);
  });

  test('golden vector: 3 image pads and the <|lvr_start|> assistant prefix', async () => {
    const v = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'tokenizer_vectors.json'), 'utf8')).vectors.find((x: { text: string }) =>
      x.text.endsWith('assistant\n<|lvr_start|>'));
    const p = await buildPrompt(qwen25StandIn(), { text: 'Describe it.', imageTokens: 3, assistantPrefix: '<|lvr_start|>' });
    expect(p.text.replace('<|image_pad|>', '<|image_pad|>'.repeat(3))).toBe(v.text);
    expect(p.ids).toEqual(v.ids);
  });

  test('text-only prompt', async () => {
    const tok = qwen25StandIn();
    const p = await buildPrompt(tok, { text: 'Hello' });
    expect(p.text).toBe('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n');
    expect(p.ids).toEqual([151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198]);
    expect(p.imageStart).toBe(-1);
  });

  test('the assistant prefix is tokenized together with the generation prompt', async () => {
    // "assistant\n" + "\n" is one pre-token "\n\n" (271), as tokenizing the rendered string gives; not 198, 198
    const p = await buildPrompt(qwen25StandIn(), { text: 'Hi', assistantPrefix: '\n' });
    expect(p.ids.slice(-2)).toEqual([77091, 271]);
  });

  test('special tokens in the prefix are recognised', async () => {
    const tok = qwen25StandIn();
    const p = await buildPrompt(tok, { text: 'Hi', assistantPrefix: '<|lvr_start|>The' });
    expect(p.ids.slice(-2)).toEqual([tok.tokenToId('<|lvr_start|>'), 785]);
  });

  test('image placeholders in user text are refused', async () => {
    await expect(buildPrompt(qwen25StandIn(), { text: 'look <|image_pad|>', imageTokens: 4 })).rejects.toThrow(/prompt contains <\|image_pad\|>/);
    await expect(buildPrompt(qwen25StandIn(), { text: 'x', imageTokens: 0 })).rejects.toThrow(/positive integer/);
  });
});

describe('golden cases: prompt text and ids (tiny checkpoints)', () => {
  const cases = fs.readdirSync(path.join(GOLDEN, 'cases')).filter((f) => f.endsWith('.json')).sort();
  test('cases exist', () => expect(cases.length).toBeGreaterThan(5));
  test.each(cases)('%s', async (f) => {
    const c = JSON.parse(fs.readFileSync(path.join(GOLDEN, 'cases', f), 'utf8'));
    const tok = await loadTokenizer(path.join(GOLDEN, c.model_dir));
    // several images: one block per image, each of its own token count (grid t*h*w / 4)
    const imageTokens = c.image_grid_thws ? c.image_grid_thws.map((g: number[]) => (g[0] * g[1] * g[2]) / 4) : c.num_image_tokens;
    const p = await buildPrompt(tok, { text: c.prompt, imageTokens, assistantPrefix: c.assistant_prefix });
    expect(p.text).toBe(c.prompt_text);
    expect(p.ids).toEqual(c.input_ids);
    expect(tok.decode(c.generated_ids)).toBe(c.output_text_raw);
    expect(finalizeOutputText(c.output_text_raw)).toBe(c.output_text);
  });
});

describe('finalizeOutputText', () => {
  test.each([
    ['cut after the first <|im_end|>, kept', 'A<|im_end|>\nmore<|im_end|>', 'A<|im_end|>'],
    ['no <|im_end|>: whole text', 'no end', 'no end'],
    ['collapse <|lvr_start|> runs', '<|lvr_start|><|lvr_start|><|lvr_start|>x<|lvr_start|>', '<|lvr_start|>x<|lvr_start|>'],
    ['runs separated by text stay', '<|lvr_start|> <|lvr_start|>', '<|lvr_start|> <|lvr_start|>'],
    ['collapse <|im_start|> runs', '<|im_start|><|im_start|>assistant', '<|im_start|>assistant'],
    ['cut before collapsing', 'a<|im_end|><|lvr_start|><|lvr_start|>', 'a<|im_end|>'],
    ['other special tokens untouched', '<|lvr|><|lvr|><|lvr_end|>B<|im_end|>', '<|lvr|><|lvr|><|lvr_end|>B<|im_end|>'],
  ])('%s', (_n, input, want) => expect(finalizeOutputText(input)).toBe(want));
});

describe('several images', () => {
  test('one placeholder block per image, images before the text, each expanded to its own count', async () => {
    const tok = qwen25StandIn();
    const p = await buildPrompt(tok, { text: 'Which?', imageTokens: [2, 3] });
    expect(p.text).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n' +
        '<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>Which?<|im_end|>\n<|im_start|>assistant\n',
    );
    const head = [151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198];
    expect(p.ids.slice(0, head.length + 9)).toEqual([...head, 151652, 151655, 151655, 151653, 151652, 151655, 151655, 151655, 151653]);
    expect(p.imageStarts).toEqual([15, 19]);
    expect(p.imageTokens).toBe(5);
  });
  test('an empty list is a text-only prompt', async () => {
    const p = await buildPrompt(qwen25StandIn(), { text: 'Hello', imageTokens: [] });
    expect(p.text).not.toContain('vision_start');
    expect(p.imageStart).toBe(-1);
  });
});
