// BLINK's official answer extraction: `analyze_answer` in zeyofu/BLINK_Benchmark eval/test_benchmark.py (read at
// commit 0cca9a3; unchanged since the GPT-4o outputs of 2024-07-01). Its rule, in order:
//   1. the whole response is exactly "A".."E"         -> "(X)"   (any of the five, even past the option count)
//   2. the whole response is exactly "(A)".."(E)"     -> itself
//   3. the tokens "(A)".."(<last option>)" among the response's whitespace-split words, over the whole text and
//      over its last "\n\n" paragraph: when neither set has exactly one element, or the whole text has none, the
//      official pipeline asks GPT-3.5 (multiple_choice.py) -> `undecided` here;
//   4. else the one token of the last paragraph if it has exactly one, else the one of the whole text.
// Only the option COUNT matters (all_choices = ['(A)', ...][:len(choices)]), never the option texts. The
// deterministic part reproduces every non-judged prediction of BLINK's published GPT-4o val outputs (1,636 of
// 1,901 items; test/unit/eval/blink_official.test.ts); the other 265 went to the judge.
import type { ScorableItem } from '../types';
import { pySplit } from './python-str';
import type { OfficialAnswer, OfficialExtractor } from './types';

/**
 * Options per subtask, from the gold letters of val (docs/benchmarks.md §3.1). Used only for result files that
 * do not record the item's own count (`options`, which eval writes into BLINK items) and for BLINK's saved outputs.
 */
export const BLINK_OPTION_COUNTS: Readonly<Record<string, number>> = {
  Art_Style: 2, Counting: 4, Forensic_Detection: 4, Functional_Correspondence: 4, IQ_Test: 4, Jigsaw: 2,
  'Multi-view_Reasoning': 2, Object_Localization: 2, Relative_Depth: 2, Relative_Reflectance: 3,
  Semantic_Correspondence: 4, Spatial_Relation: 2, Visual_Correspondence: 4, Visual_Similarity: 2,
};

const LETTERS = ['A', 'B', 'C', 'D', 'E'];
const PAREN = LETTERS.map((l) => `(${l})`);

/** analyze_answer's deterministic part for a question with `optionCount` options. */
export function blinkAnalyzeAnswer(response: string, optionCount: number): OfficialAnswer {
  if (LETTERS.includes(response)) return { letter: response, undecided: false };
  if (PAREN.includes(response)) return { letter: response[1], undecided: false };
  const choices = PAREN.slice(0, optionCount);
  const words = new Set(pySplit(response));
  const paragraphs = response.split('\n\n');
  const lastWords = new Set(pySplit(paragraphs[paragraphs.length - 1]));
  const all = choices.filter((c) => words.has(c));
  const last = choices.filter((c) => lastWords.has(c));
  if ((all.length !== 1 && last.length !== 1) || all.length < 1) return { letter: null, undecided: true };
  return { letter: (last.length === 1 ? last[0] : all[0])[1], undecided: false };
}

/** BLINK's subtask of an item: its category, else from the idx "val_<Subtask>_<k>". */
export function blinkSubtaskOf(item: ScorableItem): string | undefined {
  if (typeof item.category === 'string' && item.category in BLINK_OPTION_COUNTS) return item.category;
  const m = /^(?:val|test)_(.+)_\d+$/.exec(String(item.id));
  return m && m[1] in BLINK_OPTION_COUNTS ? m[1] : undefined;
}

/** The item's option count: recorded by our eval (`options`), else the subtask's; 4 when neither is known. */
export function blinkOptionCount(item: ScorableItem): number {
  const recorded = item.options;
  if (typeof recorded === 'number' && Number.isInteger(recorded) && recorded >= 1) return Math.min(recorded, PAREN.length);
  const subtask = blinkSubtaskOf(item);
  return subtask ? BLINK_OPTION_COUNTS[subtask] : 4;
}

export const blinkOfficial: OfficialExtractor = (response, item) => blinkAnalyzeAnswer(response, blinkOptionCount(item));
