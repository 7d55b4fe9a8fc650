// Each benchmark's official answer extraction, and how items its official pipeline would send to an LLM judge are
// settled here (vreflect never calls an LLM):
//   1. the item carries the official pipeline's own recorded choice (`official_prediction`, e.g. the `prediction`
//      of BLINK's saved outputs, which includes GPT-3.5's verdicts): that choice, compared as the official scorer
//      compares it (exact string "(X)");
//   2. else the --judge policy: `strict` (default) reads the answer with our strict rule (bare letter, "(X)",
//      "X.", "answer is X"), `none` scores the item wrong (the judge's "(Z) failed").
// Every run reports how many items each way settled, so a number that leans on a stand-in is never silent.
// The rules read the response without <|...|> special tokens: the official pipelines decode with
// skip_special_tokens=True (VLMEvalKit's Qwen2-VL wrapper), while our stored text keeps them for the upstream rules.
import { SPECIAL_TOKEN, extractStrict } from '../extract';
import type { BenchmarkKey, ScorableItem } from '../types';
import { blinkOfficial } from './blink';
import { HRBenchRule, hrbenchOfficial } from './hrbench';
import { mmeRealWorldOfficial } from './mme-realworld';
import type { OfficialAnswer, OfficialExtractor } from './types';

export type JudgePolicy = 'strict' | 'none';
export const JUDGE_POLICIES: readonly JudgePolicy[] = ['strict', 'none'];
export { HRBENCH_RULES } from './hrbench';
export type { HRBenchRule } from './hrbench';

/** The user's choices in official scoring (--judge, --hrbench-rule). */
export interface OfficialPolicy {
  judge: JudgePolicy;
  hrbenchRule: HRBenchRule;
}

/** The policy with every unset choice at its default (judge strict, HR-Bench's latest can_infer). */
export function officialPolicy(opts: Partial<OfficialPolicy> = {}): OfficialPolicy {
  return { judge: opts.judge ?? 'strict', hrbenchRule: opts.hrbenchRule ?? 'latest' };
}

export interface OfficialRule {
  /** short name shown in reports */
  name: string;
  doc: string;
  extract: OfficialExtractor;
}

const HRBENCH_DOC =
  "VLMEvalKit can_infer (HR-Bench's official scoring, mcq_vanilla_eval): one option letter among the last tokens after punctuation is blanked, or 'answer is X', else exactly one option text inside the answer; otherwise VLMEvalKit's LLM judge decides (undecided here)";
const HRBENCH_LATEST: OfficialRule = { name: 'vlmevalkit', doc: HRBENCH_DOC, extract: hrbenchOfficial('latest') };
const HRBENCH_LEGACY: OfficialRule = {
  name: 'vlmevalkit-legacy',
  doc: "VLMEvalKit can_infer before its 2025-07 change (--hrbench-rule legacy: the rule VLMEvalKit had in 2024, when HR-Bench's leaderboard was made): exactly one option letter among the tokens after punctuation is blanked, wherever it stands, else exactly one option text inside the answer, at any length; otherwise VLMEvalKit's LLM judge decides (undecided here)",
  extract: hrbenchOfficial('legacy'),
};

const strictRule: OfficialExtractor = (response) => ({ letter: extractStrict(response), undecided: false });

export const OFFICIAL_RULES: Record<BenchmarkKey, OfficialRule> = {
  BLINK: {
    name: 'blink',
    doc: 'BLINK analyze_answer (eval/test_benchmark.py): exact "X" or "(X)"; else the one "(X)" token among the whitespace-split words of the last paragraph, else of the whole text; otherwise GPT-3.5 decides (undecided here)',
    extract: blinkOfficial,
  },
  MMVP: {
    name: 'strict',
    doc: 'strict (MMVP\'s official grader is GPT-4 yes/no grading of free answers; the strict letter rule stands in)',
    extract: strictRule,
  },
  VSTAR: {
    name: 'strict',
    doc: 'strict (V*\'s official evaluation ranks option likelihoods, not generated letters; the strict letter rule stands in)',
    extract: strictRule,
  },
  HRBench4K: HRBENCH_LATEST,
  HRBench8K: HRBENCH_LATEST,
  'MME-RealWorld-Lite': {
    name: 'mme-realworld',
    doc: 'MME-RealWorld eval_your_results.py: answer prefixes removed, > 10 words without A-E = no answer, else the first [ABCDE] (case-sensitive), else the option whose text contains the response; never a judge',
    extract: mmeRealWorldOfficial,
  },
};

/** The rule one benchmark is scored by under a policy (OFFICIAL_RULES, but for HR-Bench's chosen revision). */
export function officialRule(bench: BenchmarkKey, policy: OfficialPolicy): OfficialRule {
  if ((bench === 'HRBench4K' || bench === 'HRBench8K') && policy.hrbenchRule === 'legacy') return HRBENCH_LEGACY;
  return OFFICIAL_RULES[bench];
}

/** Every official rule by its report name (the reports document the rules a run was scored by). */
export const OFFICIAL_RULE_DOCS: Record<string, string> = Object.fromEntries(
  [...Object.values(OFFICIAL_RULES), HRBENCH_LEGACY].map((r) => [r.name, r.doc]),
);

/** How an item's official verdict was reached. */
export type Settled = 'rule' | 'recorded' | 'stand_in' | 'failed';

export interface OfficialVerdict extends OfficialAnswer {
  correct: boolean;
  settled: Settled;
  /** decided by our rule and the item records the official pipeline's choice: does that choice differ? */
  differsFromRecorded?: boolean;
}

/**
 * "(X)" exactly -> "X": what the official BLINK scorer accepts (`answer == prediction`); any other recorded value
 * (a judge's "(Z)", a longer text, null when BLINK's analyze_answer raised) -> null; no record -> undefined.
 */
function recordedLetter(v: unknown): string | null | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') return null;
  const m = /^\(([A-Z])\)$/.exec(v);
  return m ? m[1] : null;
}

/** The official verdict on one response. `label` is the gold letter (upper case). */
export function officialVerdict(bench: BenchmarkKey, response: string, item: ScorableItem, label: string, policy: OfficialPolicy): OfficialVerdict {
  const ans = officialRule(bench, policy).extract(response.replace(SPECIAL_TOKEN, ''), item);
  const recorded = recordedLetter(item.official_prediction);
  if (!ans.undecided) {
    const verdict: OfficialVerdict = { ...ans, correct: ans.letter !== null && ans.letter === label, settled: 'rule' };
    if (recorded !== undefined) verdict.differsFromRecorded = recorded !== ans.letter;
    return verdict;
  }
  if (recorded !== undefined) return { letter: recorded, undecided: true, correct: recorded !== null && recorded === label, settled: 'recorded' };
  if (policy.judge === 'strict') {
    const letter = extractStrict(response);
    return { letter, undecided: true, correct: letter !== null && letter === label, settled: 'stand_in' };
  }
  return { letter: null, undecided: true, correct: false, settled: 'failed' };
}

export type { OfficialAnswer, OfficialExtractor } from './types';
