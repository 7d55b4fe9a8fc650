// The answer one benchmark's official extraction rule reads out of a response (docs/benchmarks.md §3, §4).
// Official pipelines fall back to an LLM judge where their rule cannot decide (BLINK: GPT-3.5 through
// multiple_choice.py; HR-Bench: VLMEvalKit's judge after can_infer). vreflect never calls an LLM: such items are
// marked `undecided`, and the scorer settles them by the --judge policy (metrics.ts), counting them apart.
import type { ScorableItem } from '../types';

export interface OfficialAnswer {
  /** the option letter the rule reads (upper case); null: none (scored wrong, or settled by the judge policy) */
  letter: string | null;
  /** the official pipeline would ask its LLM judge here */
  undecided: boolean;
}

/** One benchmark's official rule: the response text and the stored item (for option counts / option texts). */
export type OfficialExtractor = (response: string, item: ScorableItem) => OfficialAnswer;
