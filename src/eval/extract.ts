// Answer extraction: the rules upstream used, reproduced exactly (quirks included), and one strict rule.
// docs/benchmarks.md §2.5 and §4; the contract of issue #4. Each returns an upper-case letter or null.

/** Names used in result items (`extracted`, `correct`) and summaries. */
export type RuleName = 'upstream' | 'upstream_summary' | 'upstream_shell' | 'strict';
export const RULES: readonly RuleName[] = ['upstream', 'upstream_summary', 'upstream_shell', 'strict'];

export const RULE_DOCS: Record<RuleName, string> = {
  upstream:
    'upstream accuracy_reward (release snapshot 282be47): text after the last <answer> up to the first </answer (whole text if no tag or empty), then the first [ABCDE], case-insensitive ("The answer is B" scores E)',
  upstream_summary:
    'upstream JSON-summary variant (calculate_and_add_accuracy_summary): as upstream but an empty <answer></answer> span stays empty (no fallback to the whole text)',
  upstream_shell:
    'upstream shell summariser (evaluation_7b_stage2.sh, calculate_accuracy_by_category.py; also accuracy_reward at upstream commit 04f3ca3, which wrote the result files upstream published): the <answer> span, its first whitespace token, its first character, compared exactly (case-sensitive)',
  strict:
    'strict: drop <|...|> tokens; inside of the last <answer>...</answer> (empty = no answer); else a bare letter "X", "(X)", "X."; else a leading "(X) text" / "X. text"; else the first "answer is X"; case-sensitive',
};

/** Python's `s.split("<answer>")[-1].split("</answer")[0].strip()`. */
function upstreamSpan(response: string): string {
  const afterOpen = response.split('<answer>').pop() ?? '';
  return afterOpen.split('</answer')[0].trim();
}

function firstLetterIgnoreCase(s: string): string | null {
  const m = /[ABCDE]/i.exec(s);
  return m ? m[0].toUpperCase() : null;
}

/** accuracy_reward: the rule upstream scored every item with during the run. */
export function extractUpstream(response: string): string | null {
  let span = upstreamSpan(response);
  if (span === '') span = response;
  return firstLetterIgnoreCase(span);
}

/** The JSON-summary variant: no fallback when the span is empty (a tag-less text is still its own span). */
export function extractUpstreamSummary(response: string): string | null {
  return firstLetterIgnoreCase(upstreamSpan(response));
}

/**
 * The shell summariser's first-character rule. It returns the raw first character (not only A-E): the
 * comparison with the label is exact, so "b" or "<" simply scores wrong.
 */
export function extractUpstreamShell(response: string): string | null {
  const token = upstreamSpan(response).split(/\s+/).filter((t) => t !== '')[0];
  return token ? token[0] : null;
}

/** Qwen's <|...|> special tokens (the official rules and the strict rule read the text without them). */
export const SPECIAL_TOKEN = /<\|[^<>|]*\|>/g;
const ANSWER_BLOCK = /<answer>([\s\S]*?)<\/answer>/g;
const BARE = /^\(?([A-Z])\)?\.?$/;
const LEADING = /^(?:\(([A-Z])\)|([A-Z])\.)\s+\S/;
const ANSWER_IS = /answer is:?\s*\(?([A-Z])(?![A-Za-z])\)?/;

/** The strict rule of issue #4; a response with no recognisable answer gives null (scored wrong). */
export function extractStrict(response: string): string | null {
  let text = response.replace(SPECIAL_TOKEN, '');
  const blocks = [...text.matchAll(ANSWER_BLOCK)];
  if (blocks.length > 0) {
    text = blocks[blocks.length - 1][1];
    if (text.trim() === '') return null;
  }
  text = text.trim();
  const bare = BARE.exec(text);
  if (bare) return bare[1];
  const lead = LEADING.exec(text);
  if (lead) return lead[1] ?? lead[2];
  const said = ANSWER_IS.exec(text);
  if (said) return said[1];
  return null;
}

export const EXTRACTORS: Record<RuleName, (response: string) => string | null> = {
  upstream: extractUpstream,
  upstream_summary: extractUpstreamSummary,
  upstream_shell: extractUpstreamShell,
  strict: extractStrict,
};

/** Upstream's label normalisation: `label.strip().upper()` (the loaders already keep only the letter). */
export function normalizeLabel(label: unknown): string {
  return String(label ?? '').trim().toUpperCase();
}

/** Is the extracted answer right? The shell rule compares case-sensitively with the label as stored. */
export function isCorrect(rule: RuleName, extracted: string | null, label: string): boolean {
  if (extracted === null) return false;
  if (rule === 'upstream_shell') return extracted === String(label ?? '').trim();
  return extracted === normalizeLabel(label);
}

/** All rules over one response. */
export function extractAll(response: string, label: string): {
  extracted: Record<RuleName, string | null>;
  correct: Record<RuleName, boolean>;
} {
  const extracted = {} as Record<RuleName, string | null>;
  const correct = {} as Record<RuleName, boolean>;
  for (const rule of RULES) {
    extracted[rule] = EXTRACTORS[rule](response);
    correct[rule] = isCorrect(rule, extracted[rule], label);
  }
  return { extracted, correct };
}
