// Metrics recomputed from items alone (never from a file's summary object).
//   upstream: upstream extraction (accuracy_reward) + upstream's metric: micro accuracy, by category;
//             MME-RealWorld-Lite over Question_id prefixes perception/reasoning only (the `reason/` quirk).
//   official: each benchmark's official extraction (official/index.ts; items its pipeline would send to an LLM
//             judge are settled by a recorded verdict or the --judge policy, and counted) + its own metric
//             (docs/benchmarks.md §1, §3).
// Accuracies are percentages at full precision; error items count in `errors`, never in a denominator.
import { RULES, RuleName, extractAll, normalizeLabel } from './extract';
import { JudgePolicy, OfficialPolicy, OfficialVerdict, officialPolicy, officialRule, officialVerdict } from './official';
import type { BenchmarkKey, ScorableItem } from './types';

/**
 * The official scoring choices (official/index.ts): `judge`, how items the official pipeline would send to its LLM
 * judge are settled when no verdict is recorded; `hrbenchRule`, which VLMEvalKit can_infer reads HR-Bench. Unset:
 * the defaults.
 */
export type ScoreOptions = Partial<OfficialPolicy>;

export interface Tally {
  total: number;
  correct: number;
  accuracy: number | null;
}

export interface RunScore {
  /** scored items (errors excluded); for MME-RealWorld-Lite all of them, though the upstream metric uses fewer */
  n: number;
  errors: number;
  accuracy_upstream: number | null;
  accuracy_official: number | null;
  upstream: {
    metric: string;
    total: number;
    correct: number;
    by_category: Record<string, Tally>;
    by_perception_reasoning?: Record<string, Tally>;
  };
  official: {
    metric: string;
    /** the official extraction rule (its OFFICIAL_RULE_DOCS name) */
    extraction: string;
    /** items the official rule left to an LLM judge, and how each was settled here */
    judge: { policy: JudgePolicy; undecided: number; recorded: number; stand_in: number; failed: number };
    /** items our rule decided that also record the official pipeline's choice (BLINK saved outputs): how many differ */
    recorded_check?: { checked: number; differ: number };
    by_category?: Record<string, Tally>;
    by_task?: Record<string, Tally>;
    by_task_subtask?: Record<string, Tally>;
    /** MME-RealWorld: Task/Subtask/Category as eval_your_results.py prints it (Category lower-cased, attributes merged) */
    by_task_subtask_category?: Record<string, Tally>;
    /** MME-RealWorld: items whose official answer is E ("not featured"), per Task, as the official scorer counts */
    e_choices?: Record<string, number>;
    pairs?: { complete: number; correct: number; incomplete: number };
    cycles?: Record<string, Tally>;
    fsp?: number | null;
    fcp?: number | null;
  };
  /** micro accuracy over the n scored items under every extraction rule */
  accuracy_by_rule: Record<RuleName, number | null>;
  warnings: string[];
}

export function pct(correct: number, total: number): number | null {
  return total > 0 ? (100 * correct) / total : null;
}

function tally(map: Record<string, Tally>, key: string, ok: boolean): void {
  const t = (map[key] ??= { total: 0, correct: 0, accuracy: null });
  t.total++;
  if (ok) t.correct++;
  t.accuracy = pct(t.correct, t.total);
}

function mean(xs: number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

interface Scored {
  item: ScorableItem;
  correct: Record<RuleName, boolean>;
  official: OfficialVerdict;
}

/** The response text of an item (upstream stores [text]; a bare string is accepted too). */
export function predictionText(item: ScorableItem): string | undefined {
  const p = item.prediction;
  if (typeof p === 'string') return p;
  if (Array.isArray(p) && typeof p[0] === 'string') return p[0];
  return undefined;
}

function field(item: ScorableItem, name: string): string | undefined {
  const v = item[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * eval_your_results.py's category key: the JSON's Category lower-cased, and every category containing "attribute"
 * merged into "<first path part>/attribute". Undefined for result files written before eval kept the Category.
 */
export function mmeOfficialCategory(category: string | undefined): string | undefined {
  if (category === undefined) return undefined;
  const c = category.toLowerCase();
  return c.includes('attribute') ? `${c.split('/')[0]}/attribute` : c;
}

/** MME-RealWorld-Lite's Task when an item does not carry it: from the Question_id prefix. */
function mmeTask(item: ScorableItem): string {
  const task = field(item, 'task');
  if (task) return task;
  const prefix = String(item.id).split('/')[0].toLowerCase();
  if (prefix === 'perception') return 'Perception';
  if (prefix === 'reasoning' || prefix === 'reason') return 'Reasoning';
  return 'Unknown';
}

export function scoreRun(bench: BenchmarkKey, items: ScorableItem[], opts: ScoreOptions = {}): RunScore {
  const policy = officialPolicy(opts);
  const warnings: string[] = [];
  const scored: Scored[] = [];
  let errors = 0;
  for (const item of items) {
    const text = predictionText(item);
    if (text === undefined) {
      errors++;
      if (typeof item.error !== 'string') warnings.push(`item ${String(item.id)} has neither a prediction nor an error; counted as an error`);
      continue;
    }
    const label = String(item.label ?? '');
    scored.push({ item, correct: extractAll(text, label).correct, official: officialVerdict(bench, text, item, normalizeLabel(label), policy) });
  }
  const n = scored.length;
  const accuracy_by_rule = {} as Record<RuleName, number | null>;
  for (const rule of RULES) accuracy_by_rule[rule] = pct(scored.filter((s) => s.correct[rule]).length, n);

  const upstream = upstreamMetric(bench, scored);
  const official = officialMetric(bench, scored, warnings);
  const settled = (how: OfficialVerdict['settled']) => scored.filter((s) => s.official.settled === how).length;
  const judged = { policy: policy.judge, undecided: scored.filter((s) => s.official.undecided).length, recorded: settled('recorded'), stand_in: settled('stand_in'), failed: settled('failed') };
  const checked = scored.filter((s) => s.official.differsFromRecorded !== undefined);
  const recorded_check = checked.length ? { checked: checked.length, differ: checked.filter((s) => s.official.differsFromRecorded).length } : undefined;
  if (recorded_check?.differ) warnings.push(`official rule differs from the recorded official prediction on ${recorded_check.differ} of ${recorded_check.checked} items`);
  return {
    n,
    errors,
    accuracy_upstream: pct(upstream.correct, upstream.total),
    accuracy_official: official.accuracy,
    upstream,
    official: { ...official.details, extraction: officialRule(bench, policy).name, judge: judged, ...(recorded_check ? { recorded_check } : {}) },
    accuracy_by_rule,
    warnings,
  };
}

function upstreamMetric(bench: BenchmarkKey, scored: Scored[]): RunScore['upstream'] {
  const by_category: Record<string, Tally> = {};
  for (const s of scored) tally(by_category, s.item.category ?? 'Unknown', s.correct.upstream);
  if (bench === 'MME-RealWorld-Lite') {
    // calculate_and_add_accuracy_summary: only ids whose first path part, lower-cased, is perception/reasoning
    const by_perception_reasoning: Record<string, Tally> = {};
    let total = 0;
    let correct = 0;
    for (const s of scored) {
      const prefix = String(s.item.id).split('/')[0].toLowerCase();
      if (prefix !== 'perception' && prefix !== 'reasoning') continue;
      tally(by_perception_reasoning, prefix === 'perception' ? 'Perception' : 'Reasoning', s.correct.upstream);
      total++;
      if (s.correct.upstream) correct++;
    }
    if (total > 0)
      return { metric: 'micro accuracy over Question_id prefixes perception/reasoning (upstream quirk)', total, correct, by_category, by_perception_reasoning };
  }
  return { metric: 'micro accuracy', total: scored.length, correct: scored.filter((s) => s.correct.upstream).length, by_category };
}

type OfficialDetails = Omit<RunScore['official'], 'extraction' | 'judge'>;

function officialMetric(bench: BenchmarkKey, scored: Scored[], warnings: string[]): { accuracy: number | null; details: OfficialDetails } {
  const official = (s: Scored) => s.official.correct;
  switch (bench) {
    case 'BLINK': {
      const by_category: Record<string, Tally> = {};
      for (const s of scored) tally(by_category, s.item.category ?? 'Unknown', official(s));
      return { accuracy: mean(Object.values(by_category).map((t) => t.accuracy as number)), details: { metric: 'macro mean over subtasks', by_category } };
    }
    case 'MMVP':
      return mmvpPairs(scored, warnings);
    case 'VSTAR': {
      const by_category: Record<string, Tally> = {};
      for (const s of scored) tally(by_category, s.item.category ?? 'Unknown', official(s));
      return { accuracy: pct(scored.filter(official).length, scored.length), details: { metric: 'accuracy (overall micro, and by category)', by_category } };
    }
    case 'HRBench4K':
    case 'HRBench8K':
      return hrbenchCycles(scored, warnings);
    case 'MME-RealWorld-Lite': {
      const by_task: Record<string, Tally> = {};
      const by_task_subtask: Record<string, Tally> = {};
      const by_task_subtask_category: Record<string, Tally> = {};
      const e_choices: Record<string, number> = {};
      for (const s of scored) {
        const task = mmeTask(s.item);
        const subtask = `${task}/${field(s.item, 'subtask') ?? s.item.category ?? 'Unknown'}`;
        tally(by_task, task, official(s));
        tally(by_task_subtask, subtask, official(s));
        const fine = mmeOfficialCategory(field(s.item, 'fine_category'));
        if (fine) tally(by_task_subtask_category, `${subtask}/${fine}`, official(s));
        if (s.official.letter === 'E') e_choices[task] = (e_choices[task] ?? 0) + 1;
      }
      return {
        accuracy: pct(scored.filter(official).length, scored.length),
        details: {
          metric: 'micro accuracy over all items',
          by_task,
          by_task_subtask,
          ...(Object.keys(by_task_subtask_category).length ? { by_task_subtask_category } : {}),
          e_choices,
        },
      };
    }
  }
}

/** Pairs by id value: pair = (id - 1) div 2; a pair counts when both of its questions were scored. */
function mmvpPairs(scored: Scored[], warnings: string[]): { accuracy: number | null; details: OfficialDetails } {
  const pairs = new Map<number, boolean[]>();
  for (const s of scored) {
    const id = Number(s.item.id);
    if (!Number.isInteger(id) || id < 1) {
      warnings.push(`MMVP item id ${String(s.item.id)} is not a positive integer; pair accuracy is not defined`);
      return { accuracy: null, details: { metric: 'pair accuracy' } };
    }
    const key = Math.floor((id - 1) / 2);
    const list = pairs.get(key) ?? [];
    list.push(s.official.correct);
    pairs.set(key, list);
  }
  let complete = 0;
  let correct = 0;
  let incomplete = 0;
  for (const list of pairs.values()) {
    if (list.length !== 2) {
      incomplete++;
      continue;
    }
    complete++;
    if (list[0] && list[1]) correct++;
  }
  if (incomplete) warnings.push(`MMVP: ${incomplete} incomplete pair(s) left out of pair accuracy`);
  return { accuracy: pct(correct, complete), details: { metric: 'pair accuracy', pairs: { complete, correct, incomplete } } };
}

/**
 * VLMEvalKit report_acc_hrbench: accuracy inside each cycle_category group, then the mean over groups; FSP and
 * FCP the same over the `single` / `cross` items (averaged over the groups holding such items).
 */
function hrbenchCycles(scored: Scored[], warnings: string[]): { accuracy: number | null; details: OfficialDetails } {
  const metric = 'mean over cycle_category groups';
  if (scored.some((s) => field(s.item, 'cycle_category') === undefined)) {
    warnings.push('HR-Bench items without cycle_category: accuracy_official is null (re-run eval to record it)');
    return { accuracy: null, details: { metric } };
  }
  const cycles: Record<string, Tally> = {};
  const perCycleCat: Record<string, Record<string, Tally>> = {};
  for (const s of scored) {
    const cycle = field(s.item, 'cycle_category')!;
    tally(cycles, cycle, s.official.correct);
    tally((perCycleCat[cycle] ??= {}), s.item.category ?? 'Unknown', s.official.correct);
  }
  const catMean = (cat: string) => mean(Object.values(perCycleCat).filter((m) => m[cat]).map((m) => m[cat].accuracy as number));
  return {
    accuracy: mean(Object.values(cycles).map((t) => t.accuracy as number)),
    details: { metric, cycles, fsp: catMean('single'), fcp: catMean('cross') },
  };
}
