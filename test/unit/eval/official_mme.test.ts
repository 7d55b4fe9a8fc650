// MME-RealWorld's official extraction (yfzhang114/MME-RealWorld evaluation/eval_your_results.py,
// extract_characters_regex). Every expectation below was derived by hand from reading that function; the comment
// names the branch it goes through: [strip] s.strip(), [prefix] deletion of the answer prefixes, [words] more than
// 10 words and no [ABCDE] -> "", [regex] first [ABCDE] (case-sensitive), [choice] first choice containing
// s.lower() -> its second character, [none] nothing -> "".
import * as path from 'path';

import { openBenchmark } from '../../../src/eval/benchmarks';
import { MME_ANSWER_PREFIXES, mmeRealWorldOfficial } from '../../../src/eval/official/mme-realworld';
import type { ScorableItem } from '../../../src/eval/types';

// the choices of the loader fixture's first record (test/fixtures/eval data/MME-RealWorld-Lite)
const CHOICES = ['(A) top left', '(B) top right', '(C) bottom left', '(D) bottom right', "(E) This image doesn't feature the position."];
const ITEM: ScorableItem = { id: 'perception/remote_sensing/position/2527', label: 'A', choices: CHOICES };
const OLD_ITEM: ScorableItem = { id: 'perception/remote_sensing/position/2527', label: 'A' }; // result file without choices

const read = (response: string, item: ScorableItem = ITEM) => mmeRealWorldOfficial(response, item);

describe('MME-RealWorld official rule (eval_your_results.py extract_characters_regex)', () => {
  test.each([
    ['B', 'B', '[regex] a bare letter'],
    ['(B)', 'B', '[regex] the letter inside parentheses'],
    ['B.', 'B', '[regex] letter and full stop'],
    ['  E\n', 'E', '[strip] then [regex]'],
    ['The best answer is B', 'B', '[prefix] "The best answer is" deleted, then [regex]'],
    ['The best answer is: C', 'C', '[prefix] leaves ": C", [regex]'],
    ['The answer is C', 'C', '[prefix] "The answer is" deleted (no capital A-E is left in front)'],
    ['The answers are D', 'D', '[prefix] "The answer" deleted inside "The answers", [regex] finds D'],
    ['Best answer: C', 'B', '[prefix] "Best answer:" is only listed glued to "Best option:" (missing comma), so the B of "Best" is the first [ABCDE]'],
    ['Best option: D', 'B', '[prefix] same missing comma: "Best option:" stays, B of "Best"'],
    ['Answer: D', 'A', '[regex] the A of "Answer" ("The answer" is case-sensitive and does not match)'],
    ['Based on the image, the answer is (C).', 'B', '[regex] first capital anywhere: the B of "Based"'],
    ['<|lvr_start|><|lvr_latent_end|>C', 'C', '[regex] special tokens are lower case and never match'],
    ['<answer>D</answer>', 'D', '[regex] tags are lower case'],
    ['the image shows it clearly: D', 'D', '[regex] a letter after lower-case words'],
  ])('%j reads %s: %s', (response, want) => {
    expect(read(response)).toEqual({ letter: want, undecided: false });
  });

  test.each([
    ['(c)', 'C', '[choice] "(c)" is a substring of "(c) bottom left" only'],
    ['top right', 'B', '[choice] option-text match'],
    ['bottom', 'C', '[choice] ambiguous text: the first choice containing it wins (C before D)'],
    ['left', 'A', '[choice] "left" is in (A) and (C): the first, A'],
    ['e', 'A', '[choice] a lower-case letter is searched as text: "e" is in "(a) top left"'],
    ['d', 'D', '[choice] "d" first occurs in "(d) bottom right"'],
    ['', 'A', '[choice] an empty response is a substring of every choice: the first, A'],
    [' \n\t ', 'A', '[strip] whitespace only becomes "", then [choice] A'],
    ['\x1c\x85', 'A', '[strip] \\x1c and \\x85 are Python whitespace (not JavaScript\'s): "" -> A'],
    ["this image doesn't feature the position.", 'E', '[choice] the whole E text, lower case, 6 words'],
  ])('%j reads %s: %s', (response, want) => {
    expect(read(response)).toEqual({ letter: want, undecided: false });
  });

  test.each([
    ['the car is at the top right corner of the image near the tree', '[words] 14 words and no capital A-E: ""'],
    ['it is on the top right side', '[none] 7 words, no capital letter, in no choice'],
    ['\ufeff', '[strip] U+FEFF is not Python whitespace: "\\ufeff" is in no choice'],
    ['z', '[none] a lower-case letter found in no choice'],
    ['Final: F', '[none] F is not in [ABCDE]; "final: f" is in no choice'],
  ])('%j reads nothing: %s', (response) => {
    expect(read(response)).toEqual({ letter: null, undecided: false });
  });

  test('the word count uses Python whitespace: 11 words joined by \\x85 are "more than 10 words"', () => {
    // [words] Python splits on \x85; "top" is in choice (A), so a rule splitting on JavaScript whitespace
    // (1 word) would go on to [choice] and read A
    const eleven = Array(11).fill('top').join('\x85');
    expect(read(eleven)).toEqual({ letter: null, undecided: false });
    expect(read(Array(10).fill('top').join('\x85'))).toEqual({ letter: null, undecided: false }); // [choice] 10 words: not a substring of any choice
  });

  test('a sixth choice: [choice] reads its letter F (the [regex] class stops at E)', () => {
    const item = { ...ITEM, choices: [...CHOICES, '(F) none of them'] };
    expect(read('none of them', item)).toEqual({ letter: 'F', undecided: false });
    expect(read('F', item)).toEqual({ letter: 'A', undecided: false }); // [choice] "f" is already in "(a) top le-f-t"
  });

  test('result files without choices: the [choice] branch cannot be followed and is left undecided', () => {
    expect(read('B', OLD_ITEM)).toEqual({ letter: 'B', undecided: false }); // [regex] needs no choices
    expect(read('the car is at the top right corner of the image near the tree', OLD_ITEM)).toEqual({ letter: null, undecided: false }); // [words]
    expect(read('top right', OLD_ITEM)).toEqual({ letter: null, undecided: true });
    expect(read('', OLD_ITEM)).toEqual({ letter: null, undecided: true });
  });

  test('the prefix list is the one Python builds from the literals (two glued pairs)', () => {
    expect(MME_ANSWER_PREFIXES).toEqual([
      'The best answer is',
      'The correct answer is',
      'The answer is',
      'The answer',
      'The best option isThe correct option is',
      'Best answer:Best option:',
    ]);
    expect(read('The best option isThe correct option is B')).toEqual({ letter: 'B', undecided: false }); // [prefix] the glued text is deleted
  });

  test('loader to rule: the choices the loader keeps reach the rule as a result item carries them', async () => {
    const b = await openBenchmark('MME-RealWorld-Lite', path.join(__dirname, '..', '..', 'fixtures', 'eval', 'data-alt'));
    // a result item spreads the loader's extras at top level (runner.ts)
    const asResult = (i: number): ScorableItem => ({ id: b.items[i].id, label: b.items[i].label, ...b.items[i].extra });
    expect(read('walking', asResult(1))).toEqual({ letter: 'A', undecided: false }); // [choice] "(a) walking"
    expect(read('go straight', asResult(2))).toEqual({ letter: 'D', undecided: false }); // [choice]
    expect(read('6', asResult(3))).toEqual({ letter: 'C', undecided: false }); // [choice] "(c) 6"
    await b.close();
  });
});
