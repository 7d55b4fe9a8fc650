// BLINK's official extraction (analyze_answer of zeyofu/BLINK_Benchmark eval/test_benchmark.py) and the judge
// policy, checked two ways:
//   - hand-derived cases, each reasoned from the Python source (the branch it exercises is named);
//   - BLINK's published GPT-4o val outputs (test/fixtures/eval/blink-saved-outputs, byte-for-byte copies of the
//     authors' files; provenance in its README): `eval score` must give the leaderboard's 60.04 and its per-subtask
//     numbers, and our rule must agree with every prediction BLINK's pipeline made without its GPT-3.5 judge.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import yargs from 'yargs';

import { evalScoreCommand } from '../../../src/cli/commands/eval-score';
import { findBlinkAnswers, isBlinkPredictionMap, readBlinkAnswers, readBlinkSavedOutputs } from '../../../src/eval/blink-saved';
import { officialPolicy, officialVerdict } from '../../../src/eval/official';
import { blinkAnalyzeAnswer, blinkOptionCount } from '../../../src/eval/official/blink';
import { pySplit } from '../../../src/eval/official/python-str';
import { scoreRun } from '../../../src/eval/metrics';
import { toJson } from '../../../src/eval/report';
import { scorePath } from '../../../src/eval/score';
import { setLogLevel } from '../../../src/util/log';

const FIXTURE = path.join(__dirname, '..', '..', 'fixtures', 'eval', 'blink-saved-outputs');
const GPT4O = path.join(FIXTURE, 'saved_outputs', 'GPT4o');

beforeAll(() => setLogLevel('silent'));

describe('analyze_answer, case by case', () => {
  const decided = (letter: string) => ({ letter, undecided: false });
  const judge = { letter: null, undecided: true };

  test.each([
    // branch 1: the whole text is one of "A".."E" - any of the five, even past the option count
    ['A', 2, decided('A')],
    ['E', 2, decided('E')],
    // branch 2: the whole text is "(A)".."(E)"
    ['(C)', 4, decided('C')],
    // branches 1/2 compare the raw text: a space or a dot falls through; no "(X)" word -> the judge
    [' A', 2, judge],
    ['A.', 2, judge],
    ['B', 2, decided('B')],
    ['<answer> A </answer>', 4, judge],
    ['The answer is B', 2, judge],
    // branch 4: exactly one "(X)" word in the whole text
    ['(B) Point B', 2, decided('B')],
    ['I pick (B) because of the shadow', 2, decided('B')],
    // the choice set is "(A)".."(<last>)": "(C)" of a 2-option question is not a choice -> no match -> judge
    ['(C) the third', 2, judge],
    ['(C) the third', 3, decided('C')],
    // words are whole whitespace-split tokens: "(A)." and "(A)," are not "(A)"
    ['(A).', 2, judge],
    ['It is (A), clearly', 2, judge],
    // Python's split() takes Unicode whitespace: a no-break space separates "(A)" from the text
    ['(A)\u00a0Point A', 2, decided('A')],
    // two choices in the whole text, one in the last "\n\n" paragraph -> that one
    ['(A) looks close, (B) looks far.\n\nSo the answer is (B)', 2, decided('B')],
    // one choice in the whole text but (since it is the same word) also in the last paragraph -> it
    ['(A) is wrong\n\nreally', 2, decided('A')],
    // two choices in the last paragraph as well -> neither set has exactly one -> judge
    ['(A) or (B)', 2, judge],
    ['(A) x\n\n(B) y (A) z', 2, judge],
    // none at all -> judge
    ['', 2, judge],
    ['Point B is closer', 2, judge],
  ])('%j with %i options', (text, n, want) => {
    expect(blinkAnalyzeAnswer(text as string, n as number)).toEqual(want);
  });

  test('Python str.split(): runs of whitespace, no empty words', () => {
    expect(pySplit('  a\t\tb\n\x0bc\x1fd\u3000e  ')).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(pySplit('')).toEqual([]);
  });

  test('option count: recorded by eval, else the subtask\'s (from the category or the idx), else 4', () => {
    expect(blinkOptionCount({ id: 'x', label: 'A', options: 3 })).toBe(3);
    expect(blinkOptionCount({ id: 'x', label: 'A', category: 'Jigsaw' })).toBe(2);
    expect(blinkOptionCount({ id: 'val_Relative_Reflectance_7', label: 'A' })).toBe(3);
    expect(blinkOptionCount({ id: 'val_Multi-view_Reasoning_12', label: 'A' })).toBe(2);
    expect(blinkOptionCount({ id: 'q1', label: 'A', category: 'Nope' })).toBe(4);
  });
});

describe('items left to the judge', () => {
  const item = (extra: Record<string, unknown> = {}) => ({ id: 'val_Jigsaw_1', label: 'B', category: 'Jigsaw', ...extra });

  test('no record: --judge strict reads the strict rule, --judge none scores wrong', () => {
    expect(officialVerdict('BLINK', '<answer>B</answer>', item(), 'B', officialPolicy({ judge: 'strict' }))).toMatchObject({ letter: 'B', correct: true, settled: 'stand_in' });
    expect(officialVerdict('BLINK', '<answer>B</answer>', item(), 'B', officialPolicy({ judge: 'none' }))).toMatchObject({ letter: null, correct: false, settled: 'failed' });
  });

  test('a recorded official choice wins over the policy; it must be exactly "(X)"', () => {
    expect(officialVerdict('BLINK', 'Point B', item({ official_prediction: '(B)' }), 'B', officialPolicy({ judge: 'none' }))).toMatchObject({ correct: true, settled: 'recorded' });
    expect(officialVerdict('BLINK', 'Point B', item({ official_prediction: '(Z)' }), 'B', officialPolicy({ judge: 'strict' }))).toMatchObject({ correct: false, settled: 'recorded' });
    expect(officialVerdict('BLINK', 'Point B', item({ official_prediction: '(B) Point B' }), 'B', officialPolicy({ judge: 'strict' }))).toMatchObject({ correct: false });
    expect(officialVerdict('BLINK', 'Point B', item({ official_prediction: null }), 'B', officialPolicy({ judge: 'strict' }))).toMatchObject({ correct: false, settled: 'recorded' });
  });

  test('a rule-decided item with a record says whether they differ', () => {
    expect(officialVerdict('BLINK', '(A) x', item({ official_prediction: '(A)' }), 'B', officialPolicy({ judge: 'strict' }))).toMatchObject({ letter: 'A', settled: 'rule', differsFromRecorded: false });
    expect(officialVerdict('BLINK', '(A) x', item({ official_prediction: '(B)' }), 'B', officialPolicy({ judge: 'strict' }))).toMatchObject({ letter: 'A', differsFromRecorded: true });
  });

  test('the run counts each way, and warns when the rule and the record differ', () => {
    const s = scoreRun('BLINK', [
      { ...item({ official_prediction: '(B)' }), prediction: ['(B) yes'] }, // rule, agrees
      { ...item({ official_prediction: '(B)' }), prediction: ['(A) yes'] }, // rule, differs
      { ...item({ official_prediction: '(B)' }), prediction: ['Point B'] }, // recorded
      { ...item(), prediction: ['The answer is B'] }, // stand-in
    ]);
    expect(s.official.judge).toEqual({ policy: 'strict', undecided: 2, recorded: 1, stand_in: 1, failed: 0 });
    expect(s.official.recorded_check).toEqual({ checked: 2, differ: 1 });
    expect(s.accuracy_official).toBeCloseTo(75, 10);
    expect(s.warnings.join()).toMatch(/differs from the recorded official prediction on 1 of 2 items/);
  });
});

describe("BLINK's published GPT-4o val outputs", () => {
  // zeyofu.github.io/blink static/val_result.csv (fixture README)
  const PUBLISHED: Record<string, number> = {
    Visual_Similarity: 72.59, Counting: 49.17, Relative_Depth: 74.19, Jigsaw: 55.33, Art_Style: 82.91,
    Functional_Correspondence: 40.77, Semantic_Correspondence: 53.96, Spatial_Relation: 69.23,
    Object_Localization: 59.84, Visual_Correspondence: 75.0, 'Multi-view_Reasoning': 59.4,
    Relative_Reflectance: 37.31, Forensic_Detection: 79.55, IQ_Test: 31.33,
  };

  test('the fixture files are the authors\' files, byte for byte (git blob ids of the README table)', () => {
    const readme = fs.readFileSync(path.join(FIXTURE, 'README.md'), 'utf8');
    const blobs = [...readme.matchAll(/\| `([^`]+)` \| [^|]+\| (\d+) \| `([0-9a-f]{40})` \|/g)];
    expect(blobs.length).toBe(15);
    for (const [, rel, bytes, sha] of blobs) {
      const data = fs.readFileSync(path.join(FIXTURE, rel));
      expect([rel, data.length]).toEqual([rel, Number(bytes)]);
      const blob = crypto.createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
      expect([rel, blob]).toEqual([rel, sha]);
    }
  });

  test('every val item\'s answer is val_answers.json\'s, and the counts are the documented ones', () => {
    const answers = JSON.parse(fs.readFileSync(path.join(FIXTURE, 'val_answers.json'), 'utf8')) as Record<string, string>;
    const files = fs.readdirSync(GPT4O).map((f) => path.join(GPT4O, f));
    const { items, hiddenTest } = readBlinkSavedOutputs(files);
    expect(items.length).toBe(1901);
    expect(Object.keys(answers).length).toBe(1901);
    expect(hiddenTest).toBe(1906);
    for (const it of items) expect([it.id, `(${it.label})`]).toEqual([it.id, answers[String(it.id)]]);
  });

  test('eval score reproduces the leaderboard: 60.04 overall and every subtask', () => {
    const { table, warnings } = scorePath(GPT4O);
    const run = table.BLINK!.GPT4o;
    expect(run.n).toBe(1901);
    expect(run.errors).toBe(0);
    expect(Number(run.accuracy_official!.toFixed(2))).toBe(60.04);
    const bySubtask = Object.fromEntries(Object.entries(run.official.by_category!).map(([k, t]) => [k, Number(t.accuracy!.toFixed(2))]));
    expect(bySubtask).toEqual(PUBLISHED);
    expect(warnings).toEqual(['BLINK GPT4o: 1906 test-split items left out (answers hidden; scored on EvalAI)']);
  });

  test('our rule agrees with all 1,636 predictions BLINK made without GPT-3.5; the other 265 take its recorded verdicts', () => {
    const run = scorePath(GPT4O).table.BLINK!.GPT4o;
    expect(run.official.recorded_check).toEqual({ checked: 1636, differ: 0 });
    expect(run.official.judge).toEqual({ policy: 'strict', undecided: 265, recorded: 265, stand_in: 0, failed: 0 });
  });

  test('without the recorded verdicts the rule alone scores the judged items wrong: a lower bound, counted', () => {
    const files = fs.readdirSync(GPT4O).map((f) => path.join(GPT4O, f));
    const items = readBlinkSavedOutputs(files).items.map(({ official_prediction: _dropped, ...rest }) => rest);
    const none = scoreRun('BLINK', items, { judge: 'none' });
    expect(none.official.judge).toMatchObject({ undecided: 265, recorded: 0, failed: 265 });
    expect(Number(none.accuracy_official!.toFixed(2))).toBe(52.44);
  });

  test('one subtask file scores alone; the CLI prints the subtask table and --json', async () => {
    expect(scorePath(path.join(GPT4O, 'Counting.json')).table.BLINK!.GPT4o.accuracy_official).toBeCloseTo(49.1667, 3);
    let out = '';
    const write = process.stdout.write;
    process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
    const run = (argv: string[]) => yargs(argv).command(evalScoreCommand as never).strict().exitProcess(false).fail((m, e) => { throw e ?? new Error(m); }).parseAsync();
    try {
      await run(['score', GPT4O]);
      expect(out).toMatch(/\| BLINK \| GPT4o \| 1901 \| 0 \| [\d.]+ \| 60\.04 \| macro mean over subtasks \| 14 subtasks; 265 left to the judge: 265 by the recorded official choice; rule vs recorded: 1636\/1636 agree \|/);
      expect(out).toMatch(/\| Visual_Correspondence \| 75\.00 \|/);
      out = '';
      await run(['score', GPT4O, '--json']);
      expect(JSON.parse(out).BLINK.GPT4o.accuracy_official).toBeCloseTo(60.04, 2);
      await expect((async () => run(['score', GPT4O, '--judge', 'gpt']))()).rejects.toThrow('--judge must be one of strict, none, got gpt');
    } finally {
      process.stdout.write = write;
    }
    expect(toJson(scorePath(GPT4O).table).BLINK).toBeDefined();
  });
});

describe("BLINK's evaluate.py inputs: val_answers.json and a prediction map", () => {
  // What get_prediction_file gathers from the saved outputs: {idx: prediction} (upstream's saved_val_predictions/GPT4o.json)
  const map: Record<string, string> = {};
  for (const f of fs.readdirSync(GPT4O)) for (const it of JSON.parse(fs.readFileSync(path.join(GPT4O, f), 'utf8')).val) map[it.idx] = it.prediction;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'blink-eval-'));
  fs.mkdirSync(path.join(root, 'val_predictions'));
  fs.copyFileSync(path.join(FIXTURE, 'val_answers.json'), path.join(root, 'val_answers.json'));
  fs.writeFileSync(path.join(root, 'val_predictions', 'GPT4o.json'), JSON.stringify(map, null, 4));
  // Counting only, two predictions dropped: evaluate.py scores a missing prediction wrong
  const partial = Object.fromEntries(Object.entries(map).filter(([k]) => k.startsWith('val_Counting_') && k !== 'val_Counting_1' && k !== 'val_Counting_2'));
  fs.writeFileSync(path.join(root, 'val_predictions', 'Partial.json'), JSON.stringify(partial));

  test('recognised by shape; the answer file is found up the folders and is never taken for predictions', () => {
    expect(isBlinkPredictionMap(path.join(root, 'val_predictions', 'GPT4o.json'))).toBe(true);
    expect(isBlinkPredictionMap(path.join(root, 'val_answers.json'))).toBe(false);
    expect(isBlinkPredictionMap(path.join(GPT4O, 'Counting.json'))).toBe(false);
    expect(findBlinkAnswers(path.join(root, 'val_predictions', 'GPT4o.json'))).toBe(path.join(root, 'val_answers.json'));
    expect(findBlinkAnswers(path.join(GPT4O, 'Counting.json'))).toBe(path.join(FIXTURE, 'val_answers.json'));
    expect(readBlinkAnswers(path.join(FIXTURE, 'val_answers.json')).size).toBe(1901);
  });

  test('the full map scores 60.04; a missing prediction is wrong, as evaluate.py counts it', () => {
    const { table, warnings } = scorePath(root);
    expect(Number(table.BLINK!.GPT4o.accuracy_official!.toFixed(2))).toBe(60.04);
    expect(table.BLINK!.GPT4o.official.recorded_check).toEqual({ checked: 1897, differ: 0 }); // 4 judge "(Z)"s
    const p = table.BLINK!.Partial;
    expect(p.n).toBe(120); // 118 predictions + the 2 missing answers of the covered subtask
    // val_Counting_1 was right ("(D)") and val_Counting_2 wrong: 59 - 1 of 120
    expect(p.accuracy_official).toBeCloseTo((100 * 58) / 120, 10);
    expect(warnings.join('\n')).toMatch(/BLINK Partial: 2 answers of .* have no prediction: scored wrong/);
    expect(warnings.join('\n')).toMatch(/BLINK Partial: official BLINK averages all 14 subtasks; these have no predictions .*: Art_Style,/);
  });

  test('a prediction map with no answer file is a one-line error; so is a bad answer file', () => {
    const lone = fs.mkdtempSync(path.join(os.tmpdir(), 'blink-lone-'));
    fs.writeFileSync(path.join(lone, 'M.json'), JSON.stringify({ val_Counting_1: '(D)' })); // gold (D); the other 119 are missing
    expect(() => scorePath(path.join(lone, 'M.json'))).toThrow(/is a BLINK prediction file: its gold answers come from val_answers.json .*--blink-answers FILE/);
    const bad = path.join(lone, 'bad_answers.json');
    fs.writeFileSync(bad, JSON.stringify({ val_Counting_1: 3 }));
    expect(() => scorePath(path.join(lone, 'M.json'), undefined, { blinkAnswers: bad })).toThrow('entry "val_Counting_1" is not "val_<Subtask>_<k>": "(X)"');
    expect(scorePath(path.join(lone, 'M.json'), undefined, { blinkAnswers: path.join(FIXTURE, 'val_answers.json') }).table.BLINK!.M.accuracy_official).toBeCloseTo(100 / 120, 10);
  });
});

describe('bad BLINK saved-output files', () => {
  test('a malformed element is an error item, counted apart; a broken subtask file is left out with a warning', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blink-bad-'));
    const run = path.join(dir, 'M');
    fs.mkdirSync(run);
    fs.writeFileSync(
      path.join(run, 'Counting.json'),
      JSON.stringify({ val: [{ idx: 'val_Counting_1', answer: '(D)', full_prediction: '(D) 0', prediction: '(D)' }, { idx: 'val_Counting_2', answer: '(D)' }, 7], test: [] }),
    );
    fs.writeFileSync(path.join(run, 'Jigsaw.json'), '{"val": [');
    const { table, warnings } = scorePath(dir, undefined, { blinkAnswers: path.join(FIXTURE, 'val_answers.json') });
    const m = table.BLINK!.M;
    expect(m.errors).toBe(2); // the element without full_prediction and the bare number
    expect(warnings.join('\n')).toContain(`${path.join(run, 'Jigsaw.json')} is named like a BLINK saved-output file but is not one`);
    // the two error items are not scored; the 118 other Counting answers have no prediction and score wrong
    expect(m.n).toBe(119);
    expect(m.accuracy_official).toBeCloseTo(100 / 119, 10);
  });
});
