// Text transformation (method.md §2.4): expected strings written out by hand.
import { replaceImagePlaceholders, replaceLvrPlaceholders, transformConversation } from '../../../src/data/lvr_text';

const V = '<|vision_start|><|image_pad|><|vision_end|>';
const L8 = '<|lvr_start|>' + '<|lvr|>'.repeat(8) + '<|lvr_end|>';

test('<image> and the newlines next to it become the vision tokens', () => {
  expect(replaceImagePlaceholders('<image>\nWhat is it?')).toBe(`${V}What is it?`);
  expect(replaceImagePlaceholders('Look:\n<image>\nthen answer')).toBe(`Look:${V}then answer`);
  expect(replaceImagePlaceholders('<image>\n\nx')).toBe(`${V}\nx`);
  expect(replaceImagePlaceholders('<image><image>')).toBe(`${V}${V}`);
});

test('<lvr> becomes start + 8 slots + end; newlines after it stay; text before the first is dropped', () => {
  expect(replaceLvrPlaceholders('<lvr>\n<answer> X </answer>', 8)).toBe(`${L8}\n<answer> X </answer>`);
  expect(replaceLvrPlaceholders('Let me look. <lvr> and <lvr>!', 8)).toBe(`${L8} and ${L8}!`);
  expect(replaceLvrPlaceholders('no placeholder', 8)).toBe('no placeholder');
  expect(replaceLvrPlaceholders('<lvr>', 3)).toBe('<|lvr_start|><|lvr|><|lvr|><|lvr|><|lvr_end|>');
});

test('every turn is transformed, image first, and roles are renamed', () => {
  const out = transformConversation(
    [
      { from: 'human', value: '<image>\nQ?' },
      { from: 'gpt', value: '<lvr>\nA' },
    ],
    8,
  );
  expect(out).toEqual([
    { role: 'user', content: `${V}Q?` },
    { role: 'assistant', content: `${L8}\nA` },
  ]);
});
