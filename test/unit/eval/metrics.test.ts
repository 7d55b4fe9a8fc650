// Metrics on small hand-made item lists; every expected number is worked out by hand in the comments.
import { scoreRun } from '../../../src/eval/metrics';
import type { ScorableItem } from '../../../src/eval/types';

const item = (id: string | number, label: string, prediction: string, extra: Record<string, string> = {}): ScorableItem => ({
  id,
  label,
  prediction: [prediction],
  ...extra,
});
const err = (id: string | number, label: string, extra: Record<string, string> = {}): ScorableItem => ({ id, label, error: 'unreadable image', ...extra });

test('BLINK: upstream micro vs official macro over subtasks; errors out of every denominator', () => {
  const s = scoreRun('BLINK', [
    item('c1', 'B', '<answer> B </answer>', { category: 'Counting' }), // upstream ok, strict ok
    item('c2', 'D', 'The answer is D', { category: 'Counting' }), //   upstream E (wrong), strict ok
    item('c3', 'C', '<answer> A </answer>', { category: 'Counting' }), // both wrong
    item('j1', 'B', 'B', { category: 'Jigsaw' }), //                     both ok
    item('j2', 'B', 'A', { category: 'Jigsaw' }), //                     both wrong
    err('j3', 'A', { category: 'Jigsaw' }),
  ]);
  expect(s.n).toBe(5);
  expect(s.errors).toBe(1);
  expect(s.accuracy_upstream).toBeCloseTo(40, 10); // 2/5
  expect(s.accuracy_official).toBeCloseTo((200 / 3 + 50) / 2, 10); // Counting 2/3, Jigsaw 1/2
  expect(s.accuracy_by_rule.strict).toBeCloseTo(60, 10); // 3/5
  expect(s.upstream.by_category.Counting).toEqual({ total: 3, correct: 1, accuracy: 100 / 3 });
});

test('MMVP: pair accuracy by id, incomplete pairs (error item, missing partner) left out and counted', () => {
  const s = scoreRun('MMVP', [
    item(1, 'A', 'A'), item(2, 'B', 'B'), // pair 0: both right
    item(3, 'A', 'A'), item(4, 'B', 'A'), // pair 1: one wrong
    item(5, 'A', 'A'), err(6, 'B'), //      pair 2: incomplete (error)
    item(7, 'A', 'B'), //                   pair 3: incomplete (no partner)
  ]);
  expect(s.n).toBe(6);
  expect(s.errors).toBe(1);
  expect(s.accuracy_upstream).toBeCloseTo((100 * 4) / 6, 10);
  expect(s.accuracy_official).toBeCloseTo(50, 10); // 1 of 2 complete pairs
  expect(s.official.pairs).toEqual({ complete: 2, correct: 1, incomplete: 2 });
  expect(s.warnings.join()).toMatch(/2 incomplete pair/);
});

test('HR-Bench: mean over cycle groups, FSP/FCP; null without cycle_category', () => {
  const hr = (id: number, label: string, pred: string, category: string, cycle: string) => item(id, label, pred, { category, cycle_category: cycle });
  const items = [
    hr(0, 'A', 'A', 'single', 'c0'), // c0: 1/2
    hr(1, 'B', 'C', 'cross', 'c0'),
    hr(2, 'A', 'A', 'single', 'c1'), // c1: 2/3
    hr(3, 'B', 'B', 'cross', 'c1'),
    hr(4, 'C', 'D', 'single', 'c1'),
  ];
  const s = scoreRun('HRBench4K', items);
  expect(s.accuracy_upstream).toBeCloseTo(60, 10); // 3/5
  expect(s.accuracy_official).toBeCloseTo((50 + 200 / 3) / 2, 10);
  expect(s.official.fsp).toBeCloseTo((100 + 50) / 2, 10); // single: c0 1/1, c1 1/2
  expect(s.official.fcp).toBeCloseTo((0 + 100) / 2, 10); // cross: c0 0/1, c1 1/1
  const bare = scoreRun('HRBench8K', items.map(({ cycle_category: _c, ...rest }) => rest as ScorableItem));
  expect(bare.accuracy_official).toBeNull();
  expect(bare.accuracy_upstream).toBeCloseTo(60, 10);
  expect(bare.warnings.join()).toMatch(/cycle_category/);
});

test('MME-RealWorld-Lite: upstream counts only perception/reasoning prefixes; official micro over all, by Task', () => {
  const s = scoreRun('MME-RealWorld-Lite', [
    item('perception/a/1', 'A', 'A'), //  Perception ok
    item('Perception/b/2', 'B', 'C'), //  Perception wrong
    item('Reasoning/c/3', 'C', 'C'), //   Reasoning ok
    item('reason/d/4', 'D', 'D'), //      ok, but the `reason/` prefix is outside upstream's summary
    item('reasoning/e/5', 'E', 'E'), //   Reasoning ok
  ]);
  expect(s.n).toBe(5);
  expect(s.accuracy_upstream).toBeCloseTo(75, 10); // 3/4
  expect(s.upstream.by_perception_reasoning).toEqual({
    Perception: { total: 2, correct: 1, accuracy: 50 },
    Reasoning: { total: 2, correct: 2, accuracy: 100 },
  });
  expect(s.accuracy_official).toBeCloseTo(80, 10); // 4/5
  expect(s.official.by_task).toEqual({ Perception: { total: 2, correct: 1, accuracy: 50 }, Reasoning: { total: 3, correct: 3, accuracy: 100 } });
});

test('V*: overall micro and by category; upstream files may store prediction as a bare string', () => {
  const s = scoreRun('VSTAR', [
    { id: 0, label: 'A', prediction: 'A', category: 'direct_attributes' },
    item(1, 'C', 'B', { category: 'direct_attributes' }),
    item(2, 'B', '(B)', { category: 'relative_position' }),
  ]);
  expect(s.accuracy_official).toBeCloseTo(200 / 3, 10);
  expect(s.official.by_category).toEqual({
    direct_attributes: { total: 2, correct: 1, accuracy: 50 },
    relative_position: { total: 1, correct: 1, accuracy: 100 },
  });
});

test('an empty run has null accuracies, not NaN', () => {
  const s = scoreRun('BLINK', [err('x', 'A')]);
  expect(s).toMatchObject({ n: 0, errors: 1, accuracy_upstream: null, accuracy_official: null });
});

describe('official scoring uses each benchmark\'s own rule (src/eval/official)', () => {
  const withExtra = (id: string, label: string, prediction: string, extra: Record<string, unknown>): ScorableItem => ({ id, label, prediction: [prediction], ...extra });

  test('MME-RealWorld: eval_your_results.py, quirks included; never a judge', () => {
    const choices = ['(A) red', '(B) blue', '(C) green', '(D) white', '(E) none'];
    const s = scoreRun('MME-RealWorld-Lite', [
      withExtra('perception/x/1', 'C', 'Best answer: C', { task: 'Perception', choices }), // the B of "Best" (missing comma in the prefix list): wrong; strict: no answer
      withExtra('perception/x/2', 'C', 'The best answer is C', { task: 'Perception', choices }), // prefix removed -> C: right
      withExtra('perception/x/3', 'B', '<|lvr_start|><|lvr|><|lvr_end|><answer> B </answer>', { task: 'Perception', choices }), // special tokens dropped -> B
    ]);
    expect(s.accuracy_official).toBeCloseTo(200 / 3, 10);
    expect(s.official).toMatchObject({ extraction: 'mme-realworld', judge: { undecided: 0 } });
  });

  test('HR-Bench: VLMEvalKit can_infer; an undecided item is settled by the judge policy and counted', () => {
    const options = { A: 'the left door', B: 'the right door' };
    const items = [
      withExtra('1', 'B', 'B', { cycle_category: 'c0', category: 'single', options }), // letter: right
      withExtra('2', 'A', 'I think it is the left door.', { cycle_category: 'c0', category: 'single', options }), // option text: right
      withExtra('3', 'B', 'The answer is B because of the sign', { cycle_category: 'c1', category: 'cross', options }), // "answer is B": right
      withExtra('4', 'A', 'Both the left door and the right door are open', { cycle_category: 'c1', category: 'cross', options }), // two texts: judge
    ];
    const strict = scoreRun('HRBench4K', items);
    expect(strict.official).toMatchObject({ extraction: 'vlmevalkit', judge: { policy: 'strict', undecided: 1, stand_in: 1 } });
    expect(strict.accuracy_official).toBeCloseTo((100 + 50) / 2, 10); // c0 2/2, c1 1/2 (the stand-in reads nothing)
    const none = scoreRun('HRBench4K', items, { judge: 'none' });
    expect(none.official.judge).toMatchObject({ undecided: 1, failed: 1 });
  });
});

test('MME-RealWorld: the official Task/Subtask/Category breakdown (lower-cased, attribute categories merged) and E counts', () => {
  const choices = ['(A) a', '(B) b', '(C) c', '(D) d', '(E) none'];
  const it = (id: string, label: string, out: string, fine_category: string) =>
    ({ id, label, prediction: [out], task: 'Perception', subtask: 'Remote Sensing', fine_category, choices }) as ScorableItem;
  const s = scoreRun('MME-RealWorld-Lite', [
    it('perception/1', 'A', 'A', 'Position'), //                      position: 1/1
    it('perception/2', 'B', 'B', 'color/attribute'), //              color/attribute
    it('perception/3', 'C', 'E', 'color/Attribute/Something'), //    merged into color/attribute; wrong; an E
    it('perception/4', 'D', 'D', 'count'),
  ]);
  expect(s.official.by_task_subtask_category).toEqual({
    'Perception/Remote Sensing/position': { total: 1, correct: 1, accuracy: 100 },
    'Perception/Remote Sensing/color/attribute': { total: 2, correct: 1, accuracy: 50 },
    'Perception/Remote Sensing/count': { total: 1, correct: 1, accuracy: 100 },
  });
  expect(s.official.e_choices).toEqual({ Perception: 1 });
});
