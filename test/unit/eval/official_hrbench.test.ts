// HR-Bench's official extraction: VLMEvalKit's can_infer (vlmeval/utils/matching_util.py) as
// extract_answer_from_item calls it, the LLM judge where it returns False. Every expectation was derived by hand
// from reading those functions; the comment names the branch:
//   [nan]     an empty prediction cell reads back from pandas as NaN, str() makes it "nan"
//   [api]     "Failed to obtain answer via API" -> can_infer_option False
//   [refuse]  a refusal sentence -> 'Z'
//   [one]     exactly one choice letter is a token (after . ( ) [ ] , : ; ! * # { } -> space), among the last 4 tokens
//   [far]     exactly one letter token, but not among the last 4 tokens: nothing from [one]
//   [many]    two or more letter tokens: nothing from [one]
//   [z]       no letter token and a token "Z" -> 'Z'
//   [is]      "answer is X" (case-insensitive, X in A-D, no word boundary after X)
//   [long]    can_infer_text: the lower-cased answer is longer than twice the summed option lengths -> False
//   [text]    exactly one option text (lower case) is a substring of the lower-cased answer
//   [judge]   everything False -> the judge: undecided
// --hrbench-rule legacy (VLMEvalKit before PR #1175): [one] without the position test ([far] reads the letter), no
// [is], no [long].
import * as path from 'path';

import { openBenchmark } from '../../../src/eval/benchmarks';
import { canInfer, canInferOption, canInferText, hrbenchOfficial } from '../../../src/eval/official/hrbench';
import type { ScorableItem } from '../../../src/eval/types';

// option texts 3 + 4 + 5 + 6 = 18 code points: answers up to 36 code points reach the text rule
const OPTIONS = { A: 'red', B: 'blue', C: 'green', D: 'yellow' };
const ITEM: ScorableItem = { id: 7, label: 'B', category: 'single', cycle_category: 'cycle_0', options: OPTIONS };
const OLD_ITEM: ScorableItem = { id: 7, label: 'B', category: 'single', cycle_category: 'cycle_0' }; // no options stored

const read = (response: string, item: ScorableItem = ITEM) => hrbenchOfficial('latest')(response, item);

describe('HR-Bench official rule (VLMEvalKit can_infer, judge fallback)', () => {
  test.each([
    ['B', 'B', '[one] a bare letter: token 0 of 1'],
    ['(B)', 'B', '[one] parentheses become spaces'],
    ['B.', 'B', '[one] the full stop becomes a space'],
    ['**B**', 'B', '[one] asterisks become spaces'],
    ['The answer is B', 'B', '[one] B is token 3 of 4'],
    ['B, the blue one', 'B', '[one] B is token 0 of 4: among the last 4'],
    ['B is my choice', 'B', '[one] token 0 of 4'],
    ['B B', 'B', '[one] one distinct letter counts once'],
    ['Z or B', 'B', '[one] a letter token beats the Z rule'],
    ['A red car', 'A', '[one] the article "A" is an option letter (the quantifier guard needs VERBOSE set)'],
    ['<|lvr_start|> B', 'B', '[one] the special token is its own token, B the last'],
    ['Looking at the sign in the upper left corner, the correct option is C', 'C', '[one] C is the last of 14 tokens'],
    ['A car is parked next to the sign, so the answer is C', 'C', '[many] A and C, then [is] "answer is C"'],
    ['the answer is b', 'B', '[is] case-insensitive, upper-cased'],
    ['The answer is because of the blue color', 'B', '[is] no word boundary: the b of "because"'],
    ['correct answer is **D**', 'D', '[one] D is the last token (the [is] form would read D too)'],
    ['Blue', 'B', '[text] "blue" is a token but not a letter; option text blue'],
    ['It is green.', 'C', '[text] option-text match'],
    ['reddish', 'A', '[text] substring: "red" is inside "reddish"'],
    ['Cannot determine the answer', 'Z', '[refuse] decided, never equal to a gold letter'],
    ['I think: Cannot determine the answer. B', 'Z', '[refuse] checked before any letter'],
    ['Z', 'Z', '[z] no letter token and a Z token'],
  ])('%j reads %s: %s', (response, want) => {
    expect(read(response)).toEqual({ letter: want, undecided: false });
  });

  test.each([
    ['B is the correct answer because the car is blue', '[far] B is token 0 of 10; [is] no "answer is"; [long] 47 > 36'],
    ['B is my final choice', '[far] token 0 of 5 is not among the last 4; [text] no option text'],
    ['A or B', '[many] two letter tokens; [text] no option text'],
    ['b', '[one] lower-case b is no choice letter; [text] no option text'],
    ['Because', '[one] a letter inside a word is no token; [text] no option text'],
    ['<|lvr_start|>B', '[one] "|>B" stays one token with the tag; [text] no option text'],
    ['<answer>B</answer>', '[one] < and > are no separators: one token; [text] no option text'],
    ['blue and green', '[text] two option texts: ambiguous'],
    ['Failed to obtain answer via API', '[api] False, then [text] no option text'],
    ['', '[nan] "nan" contains no option text'],
  ])('%j goes to the judge: %s', (response) => {
    expect(read(response)).toEqual({ letter: null, undecided: true });
  });

  test('[long] the length limit counts code points (Python len), not UTF-16 units', () => {
    // 4 + 32 = 36 code points (68 UTF-16 units): within 2 * 18, [text] reads blue
    expect(read('blue' + '\u{1F642}'.repeat(32))).toEqual({ letter: 'B', undecided: false });
    // 37 code points: over the limit, the judge
    expect(read('blue' + '\u{1F642}'.repeat(33))).toEqual({ letter: null, undecided: true });
  });

  test('[nan] an empty response is matched as the text "nan"', () => {
    const item = { ...ITEM, options: { A: 'na', B: 'x' } };
    expect(read('', item)).toEqual({ letter: 'A', undecided: false }); // [text] "na" is inside "nan"
  });

  test('only the item\'s own letters count (two options A, B)', () => {
    const item = { ...ITEM, options: { A: 'left', B: 'right' } };
    expect(read('C', item)).toEqual({ letter: null, undecided: true }); // [one] C is no choice; [text] nothing
    expect(read('the answer is D', item)).toEqual({ letter: null, undecided: true }); // [is] D is no choice
  });

  test('an item with no option at all goes to the judge (VLMEvalKit\'s LLM extractor path)', () => {
    expect(read('B', { ...ITEM, options: {} })).toEqual({ letter: null, undecided: true });
  });

  test('result files without options: the letter part alone, undecided where the text part was needed', () => {
    expect(read('B', OLD_ITEM)).toEqual({ letter: 'B', undecided: false }); // [one]
    expect(read('Cannot determine the answer', OLD_ITEM)).toEqual({ letter: 'Z', undecided: false }); // [refuse]
    expect(read('Blue', OLD_ITEM)).toEqual({ letter: null, undecided: true }); // [text] would have read B
    expect(read('A or B', OLD_ITEM)).toEqual({ letter: null, undecided: true }); // [many]
  });

  test('the parts on their own', () => {
    expect(canInferOption('The answer is B', ['A', 'B', 'C', 'D'])).toBe('B');
    expect(canInferOption('Blue', ['A', 'B', 'C', 'D'])).toBe(false);
    expect(canInferText('BLUE sky', OPTIONS)).toBe('B'); // both sides lower-cased
    expect(canInferText('x'.repeat(37), OPTIONS)).toBe(false); // [long]
    expect(canInfer('B', OPTIONS)).toBe('B');
  });

  test('loader to rule: the option texts the .tsv loader keeps reach the rule as a result item carries them', async () => {
    const b = await openBenchmark('HRBench4K', path.join(__dirname, '..', '..', 'fixtures', 'eval', 'data-alt'));
    // a result item spreads the loader's extras at top level (runner.ts); options 12 / 47 / 88 / 90
    const first: ScorableItem = { id: b.items[0].id, label: b.items[0].label, ...b.items[0].extra };
    expect(read('It is 88', first)).toEqual({ letter: 'C', undecided: false }); // [text]
    expect(read('8', first)).toEqual({ letter: null, undecided: true }); // [text] "8" contains no whole option text
    await b.close();
  });
});

describe('--hrbench-rule legacy (VLMEvalKit can_infer before its 2025-07 change)', () => {
  const legacy = (response: string, item: ScorableItem = ITEM) => hrbenchOfficial('legacy')(response, item);

  test.each([
    ['B is my final choice', 'B', '[far] no position test: the one letter token counts wherever it stands'],
    ['B is the correct answer because the car is blue', 'B', '[far] token 0 of 10'],
    ['B', 'B', '[one] as latest'],
    ['The answer is B', 'B', '[one] as latest'],
    ['Cannot determine the answer', 'Z', '[refuse] as latest'],
    ['Z', 'Z', '[z] as latest'],
    ['It is green.', 'C', '[text] as latest'],
    ['blue' + 'x'.repeat(40), 'B', '[long] no length limit: 44 code points > 36 still reach the text rule'],
  ])('%j reads %s: %s', (response, want) => {
    expect(legacy(response)).toEqual({ letter: want, undecided: false });
  });

  test.each([
    ['the answer is b', '[is] absent: lower-case b is no letter token, no option text'],
    ['A car is parked next to the sign, so the answer is C', '[many] A and C; [is] absent'],
    ['correct answer is **b**', '[is] absent'],
    ['A or B', '[many] as latest'],
    ['', '[nan] as latest'],
  ])('%j goes to the judge: %s', (response) => {
    expect(legacy(response)).toEqual({ letter: null, undecided: true });
  });

  test('the rules differ only where the header says', () => {
    // latest reads these two by [is] where legacy asks the judge; the reverse for [far] and [long]
    for (const r of ['the answer is b', 'correct answer is **b**']) expect(read(r).undecided).toBe(false);
    expect(read('B is my final choice').undecided).toBe(true);
    expect(read('blue' + 'x'.repeat(40)).undecided).toBe(true);
    // result files without option texts: the letter part under the chosen rule
    expect(legacy('B is my final choice', OLD_ITEM)).toEqual({ letter: 'B', undecided: false });
  });

  test('the parts take the rule', () => {
    expect(canInferOption('B is my final choice', ['A', 'B', 'C', 'D'], 'legacy')).toBe('B');
    expect(canInferOption('B is my final choice', ['A', 'B', 'C', 'D'], 'latest')).toBe(false);
    expect(canInferText('x'.repeat(37) + 'blue', OPTIONS, 'legacy')).toBe('B');
    expect(canInfer('the answer is b', OPTIONS, 'legacy')).toBe(false);
  });
});
