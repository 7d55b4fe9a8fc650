// Answer extraction over tricky responses. Expected letters are worked out by hand from the rules in
// docs/benchmarks.md §2.5 (upstream) and issue #4 (strict), not taken from the code.
import { extractStrict, extractUpstream, extractUpstreamShell, extractUpstreamSummary, isCorrect } from '../../../src/eval/extract';

const LVR = '<|lvr_start|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr_end|>';

// [response, upstream, upstream_summary, upstream_shell, strict]
const TABLE: [string, string | null, string | null, string | null, string | null][] = [
  // the trained format
  [`${LVR}\n<answer> B </answer><|im_end|>`, 'B', 'B', 'B', 'B'],
  // prose: upstream takes the first a-e anywhere: the "e" of "The"
  ['The answer is B', 'E', 'E', 'T', 'B'],
  ['The answer is B.', 'E', 'E', 'T', 'B'],
  // no tag: upstream hits the "a" of "<|lvr_start|>" (B13); strict drops special tokens first
  [`${LVR}\nB<|im_end|>`, 'A', 'A', '<', 'B'],
  // bare letters and their decorations
  ['B', 'B', 'B', 'B', 'B'],
  ['(C)', 'C', 'C', '(', 'C'],
  ['C.', 'C', 'C', 'C', 'C'],
  ['(D).', 'D', 'D', '(', 'D'],
  ['b', 'B', 'B', 'b', null],
  // leading option with its text
  ['B. Closed', 'B', 'B', 'B', 'B'],
  ['(A) Open', 'A', 'A', '(', 'A'],
  ['A.Closed', 'A', 'A', 'A', null],
  // empty answer block: accuracy_reward falls back to the whole text, the summary variant does not
  ['<answer></answer> B', 'A', null, null, null],
  ['<answer>  </answer>', 'A', null, null, null],
  // several blocks: upstream and strict both use the last
  ['<answer>A</answer> wait <answer>C</answer>', 'C', 'C', 'C', 'C'],
  // unclosed tag: upstream reads to the end; strict sees no complete block and '<answer> D' matches no form
  ['<answer> D', 'D', 'D', 'D', null],
  // "answer is" must be followed by a letter that does not start a word; case-sensitive
  ['I think the answer is (C) because', 'E', 'E', 'I', 'C'],
  ['the answer is: D', 'E', 'E', 't', 'D'],
  ['the answer is Blue', 'E', 'E', 't', null],
  ['The Answer is B', 'E', 'E', 'T', null],
  // letters beyond E: upstream can never produce them, strict can
  ['F', null, null, 'F', 'F'],
  ['<answer> F </answer>', null, null, 'F', 'F'],
  // no answer at all
  ['', null, null, null, null],
  ['I cannot tell.', 'C', 'C', 'I', null], // the c of cannot comes first
  ['<|im_end|>', 'E', 'E', '<', null],
];

describe('answer extraction table', () => {
  test.each(TABLE)('%j', (response, upstream, summary, shell, strict) => {
    expect(extractUpstream(response)).toBe(upstream);
    expect(extractUpstreamSummary(response)).toBe(summary);
    expect(extractUpstreamShell(response)).toBe(shell);
    expect(extractStrict(response)).toBe(strict);
  });
});

describe('correctness', () => {
  test('"The answer is B" against label B: wrong upstream, right strict', () => {
    expect(isCorrect('upstream', extractUpstream('The answer is B'), 'B')).toBe(false);
    expect(isCorrect('strict', extractStrict('The answer is B'), 'B')).toBe(true);
  });
  test('labels are normalised (strip, upper) except for the shell rule, which compares exactly', () => {
    expect(isCorrect('upstream', 'A', ' a ')).toBe(true);
    expect(isCorrect('upstream_shell', 'A', 'a')).toBe(false);
    expect(isCorrect('upstream_shell', 'A', 'A')).toBe(true);
  });
  test('no answer is wrong, never an error', () => {
    expect(isCorrect('strict', null, 'A')).toBe(false);
  });
});
