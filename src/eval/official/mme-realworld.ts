// MME-RealWorld(-Lite)'s official answer extraction: `extract_characters_regex(s, choices)` of
// yfzhang114/MME-RealWorld evaluation/eval_your_results.py (read at commit 11af66f26e15a2a2c504c186fba3408195ad1f45;
// the same function, character for character, is VLMEvalKit's multiple_choice.py::extract_characters_regex that
// scores MME-RealWorld there). Re-implemented from reading it, quirks included (docs/benchmarks.md §3.5, §4):
//  1. s = response.strip() (Python whitespace).
//  2. Every occurrence (anywhere, not only at the start; case-sensitive) of each "answer prefix" is deleted, in
//     list order. Two missing commas in the Python list concatenate neighbours, so the list really is the six
//     strings below: "The best option is" / "The correct option is" and "Best answer:" / "Best option:" are only
//     removed as the glued pairs, i.e. practically never ("Best answer: C" keeps its "B" and reads B).
//  3. More than 10 words (Python str.split()) and no [ABCDE] -> "" (no answer).
//  4. Otherwise the first [ABCDE], case-sensitive, anywhere: "Based on ..." reads B, "(c)" reads nothing.
//  5. No such letter (so at most 10 words): the first choice string ("(A) text", as in the JSON's "Answer choices")
//     whose lower-case form contains the lower-case s gives its second character (the letter). An empty s is in
//     every choice: an empty response reads "A". A lower-case "b" is in "(a) bus" and reads "A".
//  6. Nothing -> "" (no answer). The rule never asks a judge.
// The official script then compares exactly: `ground_truth == text`.
import type { ScorableItem } from '../types';
import { pyReplaceAll, pySplit, pyStrip } from './python-str';
import type { OfficialAnswer, OfficialExtractor } from './types';

/** The list as Python builds it (adjacent string literals concatenate). */
export const MME_ANSWER_PREFIXES: readonly string[] = [
  'The best answer is',
  'The correct answer is',
  'The answer is',
  'The answer',
  'The best option isThe correct option is',
  'Best answer:Best option:',
];

const MAX_WORDS_WITHOUT_LETTER = 10;

/** The item's "Answer choices" as the loader stores them (`choices`); undefined in result files older than that. */
function choicesOf(item: ScorableItem): string[] | undefined {
  const c = item.choices;
  return Array.isArray(c) && c.every((x) => typeof x === 'string') ? (c as string[]) : undefined;
}

export const mmeRealWorldOfficial: OfficialExtractor = (response: string, item: ScorableItem): OfficialAnswer => {
  let s = pyStrip(response);
  for (const prefix of MME_ANSWER_PREFIXES) s = pyReplaceAll(s, prefix, '');
  const letter = /[ABCDE]/.exec(s);
  if (!letter) {
    if (pySplit(s).length > MAX_WORDS_WITHOUT_LETTER) return { letter: null, undecided: false };
    const choices = choicesOf(item);
    // A result file written before the loader kept the choices: the official rule cannot be followed here, so
    // the item is left to the scorer's policy for undecided items (never guessed).
    if (!choices) return { letter: null, undecided: true };
    const needle = s.toLowerCase();
    const hit = choices.find((c) => c.toLowerCase().includes(needle));
    if (hit === undefined) return { letter: null, undecided: false };
    // choice[1]; Python would raise IndexError on a choice shorter than 2 characters (never in the data)
    const second = [...hit][1];
    return { letter: second ?? null, undecided: false };
  }
  return { letter: letter[0], undecided: false };
};
