// HR-Bench's official answer extraction: VLMEvalKit (open-compass/VLMEvalKit), HRBenchDataset -> ImageMCQDataset
// evaluate -> multiple_choice.py mcq_vanilla_eval -> eval_vanilla -> extract_answer_from_item, which calls
// `can_infer(prediction, choices)` (vlmeval/utils/matching_util.py) and, only when that returns False, the LLM
// judge (`exact_matching` mode: 'Z', i.e. wrong). The hit is `opt == answer`, an exact letter compare.
// Re-implemented from reading those files (docs/benchmarks.md §3.4, §4). The revision reproduced is the newest
// read: matching_util.py as of open-compass/VLMEvalKit d21c5e96 (after PR #1552, merged 2026-05, which added
// step f; read through a third-party copy that names that commit), multiple_choice.py as stored at 895762d3 and
// in its newest stored form. Older revisions differ as noted at each step: 18fc37a5 has no position test in d
// and no length limit in g (apparently the rule before PR #1175, 2025-07, "Improve can_infer_option and
// can_infer_text"); 134b4ea6 has both, with the comparison in d reversed (`<`, which refuses a bare "B"); the
// "near the end" test below is what PR #1552 describes as the current heuristic.
//
// before can_infer: ImageMCQDataset.evaluate reads the prediction file back with pandas and applies str(): an
//   empty prediction cell is NaN there and becomes the text "nan" (reproduced). pandas' other NA spellings
//   ("NA", "None", "null", ...) depend on its version and are not mapped. No strip, no other cleaning.
// can_infer_option(answer, choices):
//   a. "Failed to obtain answer via API" in answer -> False (the text rule still runs).
//   b. any of four refusal sentences in answer (e.g. "Cannot determine the answer") -> 'Z' (decided, wrong).
//   c. each of . ( ) [ ] , : ; ! * # { } becomes a space; the rest split on Python whitespace ("tokens").
//   d. exactly one choice letter (A-D, upper case) is a whole token: it counts only if its first occurrence is
//      among the last 4 tokens (`splits.index(ch) > len(splits) - 5`; revision 134b4ea had `<` there and
//      18fc37a no position test). Two or more letter tokens: nothing here ("A or B" is ambiguous).
//   e. no letter token but a token "Z" -> 'Z'.
//   f. else the first "answer is X" / "correct answer is X" (case-insensitive, optional * around X, X in
//      A-D, no word boundary: "answer is because" reads B) whose upper-cased X is a choice -> X. (Absent before
//      d21c5e96.)
//   The `'A' in splits and len(splits) > 3 and verbose` quantifier guard only acts with the VERBOSE environment
//   variable set; a default run has it unset, and so does this rule.
// can_infer_text(answer, choices), when can_infer_option gave nothing:
//   g. answer lower-cased; longer (code points) than twice the summed option lengths -> False (absent in 18fc37a).
//   h. the options whose lower-cased text is a substring of it: exactly one -> its letter, else False.
// Both False -> the judge: undecided.
//
// --hrbench-rule legacy: VLMEvalKit's can_infer before PR #1175 (2025-07), as revision 18fc37a5 still has it, and
// as it stood in 2024 when HR-Bench's leaderboard (its README's table) was scored with VLMEvalKit: steps d without
// the position test (any single letter token counts wherever it stands), no step f, no length limit in g. Which
// revision scored a given published number is not recorded anywhere we found; `latest` (the default) is what
// running VLMEvalKit today gives. The judge fallback is the same in both.
import type { ScorableItem } from '../types';
import { PY_WHITESPACE, pyLen, pySplit } from './python-str';
import type { OfficialAnswer, OfficialExtractor } from './types';

/** can_infer's result: a letter (or 'Z'), or false where VLMEvalKit would ask its judge. */
export type CanInfer = string | false;

/** Which VLMEvalKit revision of can_infer (header): today's, or the one before PR #1175 (2024's leaderboard). */
export type HRBenchRule = 'latest' | 'legacy';
export const HRBENCH_RULES: readonly HRBenchRule[] = ['latest', 'legacy'];

const API_FAILURE = 'Failed to obtain answer via API';

export const REFUSALS: readonly string[] = [
  "Sorry, I can't help with images of people yet.",
  "I can't process this file.",
  "I'm sorry, but without the image provided",
  'Cannot determine the answer',
];

const SEPARATORS = /[.()[\],:;!*#{}]/g;
const S = `[${PY_WHITESPACE}]`;
const ANSWER_IS = new RegExp(`(?:correct${S}+)?answer${S}+is${S}+\\**([ABCD])\\**`, 'i');

/** can_infer_option; `letters` are the choice keys in A..Z order. */
export function canInferOption(answer: string, letters: readonly string[], rule: HRBenchRule = 'latest'): CanInfer {
  if (answer.includes(API_FAILURE)) return false;
  if (REFUSALS.some((r) => answer.includes(r))) return 'Z';
  const splits = pySplit(answer.replace(SEPARATORS, ' '));
  const present = letters.filter((ch) => splits.includes(ch));
  if (present.length === 1) {
    const ch = present[0];
    if (rule === 'legacy' || splits.indexOf(ch) > splits.length - 5) return ch;
  } else if (present.length === 0 && splits.includes('Z')) return 'Z';
  if (rule === 'legacy') return false;
  const said = ANSWER_IS.exec(answer);
  if (said && letters.includes(said[1].toUpperCase())) return said[1].toUpperCase();
  return false;
}

/** can_infer_text; `options` maps letters to option texts. */
export function canInferText(answer: string, options: Record<string, string>, rule: HRBenchRule = 'latest'): CanInfer {
  const lower = answer.toLowerCase();
  const total = Object.values(options).reduce((n, v) => n + pyLen(v), 0);
  if (rule === 'latest' && pyLen(lower) > 2 * total) return false;
  const cands = Object.keys(options).filter((k) => lower.includes(options[k].toLowerCase()));
  return cands.length === 1 ? cands[0] : false;
}

/** can_infer: the option-letter rule, then the option-text rule. */
export function canInfer(answer: string, options: Record<string, string>, rule: HRBenchRule = 'latest'): CanInfer {
  return canInferOption(answer, Object.keys(options).sort(), rule) || canInferText(answer, options, rule);
}

/** The option texts the loader stores (`options: {A: text, ...}`); undefined in older result files. */
function optionsOf(item: ScorableItem): Record<string, string> | undefined {
  const o = item.options;
  if (!o || typeof o !== 'object' || Array.isArray(o)) return undefined;
  const entries = Object.entries(o as Record<string, unknown>);
  if (!entries.every(([k, v]) => /^[A-Z]$/.test(k) && typeof v === 'string')) return undefined;
  return Object.fromEntries(entries) as Record<string, string>;
}

/** Every published HR-Bench row has options A-D; without stored texts only their letters are known. */
const HRBENCH_LETTERS = ['A', 'B', 'C', 'D'];

/** HR-Bench's official extraction under one revision of can_infer. */
export const hrbenchOfficial = (rule: HRBenchRule): OfficialExtractor => (response: string, item: ScorableItem): OfficialAnswer => {
  const answer = response === '' ? 'nan' : response;
  const options = optionsOf(item);
  if (!options) {
    // Result files written before the loader stored `options`: the letter part alone. Where it gives nothing,
    // can_infer_text would have needed the texts (it may have decided, or the judge would have been asked):
    // undecided either way.
    const got = canInferOption(answer, HRBENCH_LETTERS, rule);
    return got ? { letter: got, undecided: false } : { letter: null, undecided: true };
  }
  // no option at all: newer VLMEvalKit hands such rows to an LLM extractor, never to can_infer
  if (Object.keys(options).length === 0) return { letter: null, undecided: true };
  const got = canInfer(answer, options, rule);
  return got ? { letter: got, undecided: false } : { letter: null, undecided: true };
};
