// `eval score` on V-Reflection's OWN published result files (test/fixtures/eval/upstream-published, verbatim copies
// of IDEA-Research/V-Reflection@04f3ca3 evaluation/results/...; provenance in that folder's README).
//
// The reference is what upstream wrote, not our code: the summary object at the head of each baseline file (counts
// per category and overall). The checkpoint files carry no summary. Their expected counts, the MMVP pairs and the
// BLINK judge counts come from a separate Python recount of the items (upstream's accuracy_reward as it reads at
// that commit, BLINK's analyze_answer, the pair rule), written apart from this code base.
//
// Which extraction rule produced upstream's summaries (docs/benchmarks.md §2.5 / A8)? What these files show:
//   - At 04f3ca3 the only writer of this summary shape is evaluation/calculate_accuracy_by_category.py. It uses
//     the first-character rule: text after the last <answer> up to </answer, stripped; the first " "-separated
//     word; its first character; compared exactly with the label. That is our `upstream_shell`. evaluation.py at
//     that commit has no calculate_and_add_accuracy_summary, and its accuracy_reward is the same first-character
//     rule. The regex accuracy_reward ("first [ABCDE], case-insensitive") that our `upstream` rule reproduces is
//     in a later version of evaluation.py.
//   - The numbers cannot tell the rules apart. Every answer here is a clean letter ("B<|im_end|>", "B.<|im_end|>",
//     or "<answer> B </answer>"), so upstream, upstream_summary, upstream_shell and strict agree on all 2,676
//     items. The summaries are therefore reproduced exactly (every count) by ALL THREE upstream rules. The last
//     test asserts that the rules agree, so that a later fixture which does split them is noticed.
//   - Percentages: upstream computes correct / total * 100 and metrics.ts computes 100 * correct / total. Four of
//     the ten stored percentages differ from ours in the last bit (e.g. 38/150: 25.333333333333336 against
//     25.333333333333332). The counts are equal; we compare percentages to 1e-10 and check that upstream's
//     arithmetic on our counts gives its stored numbers exactly.
import * as fs from 'fs';
import * as path from 'path';

import { RULES, RuleName, extractAll } from '../../../src/eval/extract';
import { predictionText } from '../../../src/eval/metrics';
import { readResultItems } from '../../../src/eval/results';
import { findResultFiles, scorePath } from '../../../src/eval/score';
import type { ScorableItem } from '../../../src/eval/types';

const RESULTS = path.join(__dirname, '..', '..', 'fixtures', 'eval', 'upstream-published', 'evaluation', 'results');
const BASELINE = 'Qwen_Qwen2.5-VL-7B-Instruct';
const CHECKPOINT =
  '_comp_robot_zhoujiazhou_projects_Active-Coconut_result_stage1_checkpoints_7b_Stage1_steps2500_b1_mseLVR0.1-MaxVisToken5120-MinVisToken128_checkpoint-1200';

const file = (bench: string, run: string, name: string) => path.join(RESULTS, bench, 'decoding_by_steps', run, name);
const FILES = {
  blinkBase: file('blink', BASELINE, 'steps004.json'),
  blinkCk: file('blink', CHECKPOINT, 'steps008.json'),
  mmvpBase: file('MMVP', BASELINE, 'steps004.json'),
  mmvpCk: file('MMVP', CHECKPOINT, 'steps008.json'),
  mmvpCk4: file('MMVP', CHECKPOINT, 'steps004.json'),
  vstarBase: file('vstar_bench', BASELINE, 'steps004.json'),
  vstarCk: file('vstar_bench', CHECKPOINT, 'steps008.json'),
};

/** Lengths read_file reported for upstream's files (total_chars); the copies are ASCII, so also their bytes. */
const UPSTREAM_CHARS: Record<keyof typeof FILES, number> = {
  blinkBase: 96143,
  blinkCk: 233471,
  mmvpBase: 26753,
  mmvpCk: 84098,
  mmvpCk4: 62546,
  vstarBase: 24531,
  vstarCk: 62887,
};

interface UpstreamSummary {
  accuracy_by_category: Record<string, { total: number; correct: number; accuracy: number }>;
  overall_accuracy: number;
  overall_correct: number;
  overall_total: number;
}

function summaryOf(f: string): UpstreamSummary {
  const { summary } = readResultItems(f);
  if (!summary) throw new Error(`${f} has no summary object`);
  return summary as unknown as UpstreamSummary;
}

/** Per-category counts of one rule, from our extraction of the stored responses. */
function tallyByRule(f: string, rule: RuleName): Record<string, { total: number; correct: number }> {
  const out: Record<string, { total: number; correct: number }> = {};
  for (const item of readResultItems(f).items as ScorableItem[]) {
    const t = (out[item.category ?? 'Unknown'] ??= { total: 0, correct: 0 });
    t.total++;
    if (extractAll(predictionText(item)!, String(item.label)).correct[rule]) t.correct++;
  }
  return out;
}

const BENCH_DIR = { BLINK: 'blink', MMVP: 'MMVP', VSTAR: 'vstar_bench' } as const;
type Bench = keyof typeof BENCH_DIR;

/** eval score on one run folder (baseline: its steps004.json; checkpoint: steps008.json, or steps004.json). */
function scoreRunFolder(bench: Bench, folder: string, opts = {}) {
  const out = scorePath(path.join(RESULTS, BENCH_DIR[bench], 'decoding_by_steps', folder), undefined, opts);
  if (out.warnings.length) throw new Error(`unexpected warnings: ${out.warnings.join('; ')}`);
  return out.table[bench]!;
}
const baseline = (bench: Bench) => scoreRunFolder(bench, BASELINE).step4;
const checkpoint = (bench: Bench) => scoreRunFolder(bench, CHECKPOINT).step8;

test('the copies are whole: upstream lengths, ASCII, JSON, item counts', () => {
  for (const [key, f] of Object.entries(FILES) as [keyof typeof FILES, string][]) {
    const text = fs.readFileSync(f, 'utf8');
    expect([key, text.length, Buffer.byteLength(text)]).toEqual([key, UPSTREAM_CHARS[key], UPSTREAM_CHARS[key]]);
    expect(Array.isArray(JSON.parse(text))).toBe(true);
  }
  expect(readResultItems(FILES.blinkBase).items).toHaveLength(697);
  expect(readResultItems(FILES.blinkCk).items).toHaveLength(697);
  expect(readResultItems(FILES.mmvpBase).items).toHaveLength(300);
  expect(readResultItems(FILES.mmvpCk).items).toHaveLength(300);
  expect(readResultItems(FILES.mmvpCk4).items).toHaveLength(300);
  expect(readResultItems(FILES.vstarBase).items).toHaveLength(191);
  expect(readResultItems(FILES.vstarCk).items).toHaveLength(191);
  // only the baseline files carry a summary (written by calculate_accuracy_by_category.py)
  expect(readResultItems(FILES.mmvpCk).summary).toBeNull();
  expect(readResultItems(FILES.mmvpCk4).summary).toBeNull();
  expect(readResultItems(FILES.vstarCk).summary).toBeNull();
  expect(readResultItems(FILES.blinkCk).summary).toBeNull();
});

test('upstream\'s own tree scores as one table: benchmark from the folders, runs named <run folder>/step<S>', () => {
  // Each benchmark here has files in two run folders (baseline and checkpoint), so every run is named after its
  // folder; the checkpoint's MMVP steps004.json and the baseline's no longer collide.
  const found = findResultFiles(RESULTS).files.map((f) => [f.bench, f.run]);
  expect(found.sort()).toEqual(
    [
      ['BLINK', `${BASELINE}/step4`],
      ['BLINK', `${CHECKPOINT}/step8`],
      ['MMVP', `${BASELINE}/step4`],
      ['MMVP', `${CHECKPOINT}/step4`],
      ['MMVP', `${CHECKPOINT}/step8`],
      ['VSTAR', `${BASELINE}/step4`],
      ['VSTAR', `${CHECKPOINT}/step8`],
    ].sort(),
  );
  const table = scorePath(RESULTS).table;
  // the same scores as each run folder scored on its own
  expect(table.MMVP![`${CHECKPOINT}/step4`].accuracy_upstream).toBe(scoreRunFolder('MMVP', CHECKPOINT).step4.accuracy_upstream);
  expect(table.BLINK![`${BASELINE}/step4`].accuracy_official).toBe(baseline('BLINK').accuracy_official);
  for (const bench of ['BLINK', 'MMVP', 'VSTAR'] as const) {
    expect(baseline(bench).errors).toBe(0);
    expect(checkpoint(bench).errors).toBe(0);
  }
});

describe.each([
  ['BLINK', 'blinkBase'],
  ['MMVP', 'mmvpBase'],
  ['VSTAR', 'vstarBase'],
] as const)('%s baseline: the summary upstream wrote into the file head', (bench, key) => {
  const f = FILES[key];
  const summary = summaryOf(f);
  const ours = baseline(bench);

  test('overall and per-category counts of our upstream metric equal upstream\'s', () => {
    expect(ours.upstream.total).toBe(summary.overall_total);
    expect(ours.upstream.correct).toBe(summary.overall_correct);
    expect(ours.accuracy_upstream!).toBeCloseTo(summary.overall_accuracy, 10);
    const byCat = Object.fromEntries(Object.entries(ours.upstream.by_category).map(([c, t]) => [c, { total: t.total, correct: t.correct }]));
    const theirs = Object.fromEntries(Object.entries(summary.accuracy_by_category).map(([c, t]) => [c, { total: t.total, correct: t.correct }]));
    expect(byCat).toEqual(theirs);
    for (const [c, t] of Object.entries(summary.accuracy_by_category)) {
      expect(ours.upstream.by_category[c].accuracy!).toBeCloseTo(t.accuracy, 10);
      // upstream's arithmetic (correct / total * 100) on our counts gives its stored number to the last bit
      expect((ours.upstream.by_category[c].correct / ours.upstream.by_category[c].total) * 100).toBe(t.accuracy);
    }
    expect((ours.upstream.correct / ours.upstream.total) * 100).toBe(summary.overall_accuracy);
  });

  test.each(['upstream', 'upstream_summary', 'upstream_shell'] as const)('rule %s reproduces every count of the summary', (rule) => {
    const theirs = Object.fromEntries(Object.entries(summary.accuracy_by_category).map(([c, t]) => [c, { total: t.total, correct: t.correct }]));
    expect(tallyByRule(f, rule)).toEqual(theirs);
    expect(ours.accuracy_by_rule[rule]!).toBeCloseTo(summary.overall_accuracy, 10);
  });
});

test('the summaries themselves (numbers as published)', () => {
  expect(summaryOf(FILES.blinkBase)).toMatchObject({ overall_correct: 377, overall_total: 697, overall_accuracy: 54.08895265423242 });
  expect(summaryOf(FILES.mmvpBase)).toMatchObject({ overall_correct: 199, overall_total: 300, accuracy_by_category: { Unknown: { total: 300, correct: 199 } } });
  expect(summaryOf(FILES.vstarBase)).toMatchObject({
    overall_correct: 150,
    overall_total: 191,
    accuracy_by_category: { direct_attributes: { total: 115, correct: 94 }, relative_position: { total: 76, correct: 56 } },
  });
});

test('checkpoint runs (no summary in the files): upstream counts from an independent recount', () => {
  const counts = (run: ReturnType<typeof checkpoint>) => Object.fromEntries(Object.entries(run.upstream.by_category).map(([c, t]) => [c, [t.correct, t.total]]));
  expect(counts(checkpoint('BLINK'))).toEqual({ Counting: [84, 120], IQ_Test: [37, 150], Jigsaw: [78, 150], Relative_Reflectance: [57, 134], Spatial_Relation: [124, 143] });
  expect(checkpoint('BLINK').upstream).toMatchObject({ correct: 380, total: 697 });
  expect(counts(checkpoint('MMVP'))).toEqual({ Unknown: [202, 300] });
  expect(counts(scoreRunFolder('MMVP', CHECKPOINT).step4)).toEqual({ Unknown: [204, 300] }); // 4 latent steps
  expect(counts(checkpoint('VSTAR'))).toEqual({ direct_attributes: [95, 115], relative_position: [53, 76] });
});

test('official metrics, checkable from the items', () => {
  // MMVP pair accuracy: pair = (id-1) div 2, both questions right. Baseline: 199 questions right but only 52 of 150
  // pairs; checkpoint: 202 and 54. Every answer is a clean letter, so the strict stand-in reads them all.
  expect(baseline('MMVP').official.pairs).toEqual({ complete: 150, correct: 52, incomplete: 0 });
  expect(baseline('MMVP').accuracy_official!).toBeCloseTo((100 * 52) / 150, 10);
  expect(checkpoint('MMVP').official.pairs).toEqual({ complete: 150, correct: 54, incomplete: 0 });
  expect(checkpoint('MMVP').accuracy_official!).toBeCloseTo(36, 10);
  expect(scoreRunFolder('MMVP', CHECKPOINT).step4.official.pairs).toEqual({ complete: 150, correct: 56, incomplete: 0 });
  // V*: micro accuracy, equal to the upstream numbers here
  expect(baseline('VSTAR').accuracy_official!).toBeCloseTo((100 * 150) / 191, 10);
  expect(checkpoint('VSTAR').accuracy_official!).toBeCloseTo((100 * 148) / 191, 10);
  // BLINK: macro mean over the 5 subtasks. Baseline per subtask = the upstream counts (80/120, 38/150, 79/150,
  // 54/134, 126/143).
  expect(baseline('BLINK').accuracy_official!).toBeCloseTo((100 * (80 / 120 + 38 / 150 + 79 / 150 + 54 / 134 + 126 / 143)) / 5, 10);
  expect(checkpoint('BLINK').accuracy_official!).toBeCloseTo((100 * (84 / 120 + 37 / 150 + 78 / 150 + 57 / 134 + 124 / 143)) / 5, 10);
});

test('BLINK judge counts: "X." (48 baseline answers) and every <answer> X </answer> answer go to the judge', () => {
  // analyze_answer accepts only "X" or "(X)" tokens. The baseline's 48 "A."-style answers (Jigsaw 19,
  // Relative_Reflectance 2, Spatial_Relation 27) and all 697 checkpoint answers would go to GPT-3.5 upstream.
  // Here the strict stand-in settles them (default --judge strict).
  expect(baseline('BLINK').official.judge).toEqual({ policy: 'strict', undecided: 48, recorded: 0, stand_in: 48, failed: 0 });
  expect(checkpoint('BLINK').official.judge).toEqual({ policy: 'strict', undecided: 697, recorded: 0, stand_in: 697, failed: 0 });
  // MMVP and V* have no judge in our official rules (strict letter rule stands in for their graders)
  for (const bench of ['MMVP', 'VSTAR'] as const)
    for (const run of [baseline(bench), checkpoint(bench)]) expect(run.official.judge).toEqual({ policy: 'strict', undecided: 0, recorded: 0, stand_in: 0, failed: 0 });
  // --judge none scores the judged items wrong: baseline Jigsaw 73/150, RR 53/134, SR 106/143; checkpoint 0.
  const noneBase = scoreRunFolder('BLINK', BASELINE, { judge: 'none' }).step4;
  const noneCk = scoreRunFolder('BLINK', CHECKPOINT, { judge: 'none' }).step8;
  expect(noneBase.official.judge).toMatchObject({ policy: 'none', undecided: 48, failed: 48 });
  expect(noneBase.accuracy_official!).toBeCloseTo((100 * (80 / 120 + 38 / 150 + 73 / 150 + 53 / 134 + 106 / 143)) / 5, 10);
  expect(noneCk.official.judge).toMatchObject({ policy: 'none', undecided: 697, failed: 697 });
  expect(noneCk.accuracy_official).toBe(0);
  // the upstream metric does not depend on the judge
  expect(noneBase.accuracy_upstream).toBe(baseline('BLINK').accuracy_upstream);
});

test('on these files every rule agrees on every item (so they cannot tell the upstream rules apart)', () => {
  let items = 0;
  for (const f of Object.values(FILES))
    for (const item of readResultItems(f).items as ScorableItem[]) {
      const { correct } = extractAll(predictionText(item)!, String(item.label));
      expect(new Set(RULES.map((r) => correct[r])).size).toBe(1);
      items++;
    }
  expect(items).toBe(2 * (697 + 300 + 191) + 300);
});
