// BLINK's published model outputs (zeyofu/BLINK_Benchmark eval/saved_outputs/<Model>/<Subtask>.json), read as one
// run per <Model> folder so `eval score` can check our BLINK scoring against the published leaderboard:
//   {"val": [{"idx", "answer", "full_prediction", "prediction"}, ...], "test": [...]}
// `full_prediction` is the model's raw text (scored by every rule of ours); `prediction` is what BLINK's pipeline
// extracted, GPT-3.5's verdicts included, and becomes `official_prediction` (official/index.ts uses it for the
// items BLINK's rule leaves to the judge). The test split's answers are "hidden": it is counted and left out.
// BLINK's own script writes "<Subtask with spaces>.json"; the repository's files use underscores. Both are read.
import * as fs from 'fs';
import * as path from 'path';

import { BLINK_ALL_SUBTASKS, blinkLabel } from './benchmarks/blink';
import type { ScorableItem } from './types';

/** The subtask a file name stands for, or undefined. */
export function blinkSavedSubtask(file: string): string | undefined {
  const m = /^(.+)\.json$/.exec(path.basename(file));
  if (!m) return undefined;
  const name = m[1].replace(/ /g, '_');
  return BLINK_ALL_SUBTASKS.includes(name) ? name : undefined;
}

/** Is this file BLINK's saved-output shape (an object with a `val` list)? Reads files named like a subtask only. */
export function isBlinkSavedOutput(file: string): boolean {
  if (!blinkSavedSubtask(file)) return false;
  try {
    const data = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    return typeof data === 'object' && data !== null && !Array.isArray(data) && Array.isArray((data as { val?: unknown }).val);
  } catch {
    return false;
  }
}

export interface BlinkSavedRun {
  items: ScorableItem[];
  /** test-split items left out (answers hidden) */
  hiddenTest: number;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The val items of saved-output files (one per subtask); a malformed element becomes an error item. */
export function readBlinkSavedOutputs(files: string[]): BlinkSavedRun {
  const items: ScorableItem[] = [];
  let hiddenTest = 0;
  for (const file of [...files].sort()) {
    const subtask = blinkSavedSubtask(file)!;
    let data: { val?: unknown; test?: unknown };
    try {
      data = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`${file} is not readable JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(data.val)) throw new Error(`${file}: no "val" list (BLINK saved-output files hold {"val": [...], "test": [...]})`);
    if (Array.isArray(data.test)) hiddenTest += data.test.length;
    data.val.forEach((el: unknown, i: number) => {
      const e = (typeof el === 'object' && el !== null ? el : {}) as Record<string, unknown>;
      const idx = str(e.idx) ?? `val_${subtask}_#${i + 1}`;
      const answer = str(e.answer);
      const full = str(e.full_prediction);
      const base = { id: idx, category: subtask, label: answer ? blinkLabel(answer.trim()) : '' };
      if (!answer || full === undefined) {
        items.push({ ...base, error: `${file} val[${i}]: needs string "answer" and "full_prediction"` });
        return;
      }
      items.push({ ...base, prediction: [full], official_prediction: str(e.prediction) ?? null });
    });
  }
  return { items, hiddenTest };
}

// ---- BLINK's official scorer inputs (eval/evaluate.py): {split}_answers.json and a prediction map ----
// evaluate.py reads the gold `val_answers.json` ({"val_<Subtask>_<k>": "(X)"}) and a prediction file of the same
// shape ({idx: "(X)"}, what get_prediction_file gathers from the saved outputs), counts a prediction right iff it
// equals the gold string, counts an answer with no prediction wrong, and averages the 14 subtask accuracies. Here
// the average runs over the subtasks the predictions cover (a warning names the absent ones), so one subtask's file
// still scores alone.

const IDX = /^val_(.+)_\d+$/;

/** A BLINK answer file: idx -> gold "(X)". */
export function readBlinkAnswers(file: string): Map<string, string> {
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not a readable BLINK answer file: ${(err as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error(`${file}: a BLINK answer file is one JSON object {"val_<Subtask>_<k>": "(X)"}`);
  const answers = new Map<string, string>();
  for (const [idx, gold] of Object.entries(data)) {
    if (!IDX.test(idx) || typeof gold !== 'string') throw new Error(`${file}: entry ${JSON.stringify(idx)} is not "val_<Subtask>_<k>": "(X)"`);
    answers.set(idx, gold);
  }
  if (answers.size === 0) throw new Error(`${file}: no answers`);
  return answers;
}

/** val_answers.json in the folder of `file` or up to three folders above it (BLINK's eval/ layout). */
export function findBlinkAnswers(file: string): string | undefined {
  let dir = path.dirname(path.resolve(file));
  for (let i = 0; i < 4; i++) {
    const candidate = path.join(dir, 'val_answers.json');
    if (fs.existsSync(candidate)) return candidate;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

/** A prediction map ({"val_<Subtask>_<k>": "(X)"}, not itself an *_answers.json file)? */
export function isBlinkPredictionMap(file: string): boolean {
  if (!file.endsWith('.json') || /_answers\.json$/.test(file) || blinkSavedSubtask(file)) return false;
  try {
    const data = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return false;
    const entries = Object.entries(data);
    return entries.length > 0 && entries.every(([k, v]) => IDX.test(k) && (typeof v === 'string' || v === null));
  } catch {
    return false;
  }
}

/** A prediction map's items: the prediction is the text and the recorded official choice at once. */
export function readBlinkPredictionMap(file: string): BlinkSavedRun {
  const data = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string | null>;
  const items: ScorableItem[] = Object.entries(data).map(([idx, pred]) => ({
    id: idx,
    category: IDX.exec(idx)![1],
    label: '',
    prediction: [pred ?? ''],
    official_prediction: pred,
  }));
  return { items, hiddenTest: 0 };
}

/**
 * Gold from the answer file, as evaluate.py takes it: labels replaced, and every answer of a covered subtask
 * without a prediction added as a wrong item. Returns warnings for what differed.
 */
export function applyBlinkAnswers(run: BlinkSavedRun, answers: Map<string, string>, answersFile: string): string[] {
  const warnings: string[] = [];
  const subtasks = new Set(run.items.map((it) => String(it.category)));
  const seen = new Set<string>();
  let relabelled = 0;
  let unknown = 0;
  run.items = run.items.filter((it) => {
    const keep = answers.has(String(it.id)) || it.label !== '' || typeof it.error === 'string'; // error items stay counted
    if (!keep) unknown++;
    return keep;
  });
  for (const it of run.items) {
    const gold = answers.get(String(it.id));
    seen.add(String(it.id));
    if (gold === undefined) continue;
    const label = blinkLabel(gold.trim());
    if (it.label !== '' && it.label !== label) relabelled++;
    it.label = label;
  }
  let missing = 0;
  for (const [idx, gold] of answers) {
    const subtask = IDX.exec(idx)![1];
    if (!subtasks.has(subtask) || seen.has(idx)) continue;
    run.items.push({ id: idx, category: subtask, label: blinkLabel(gold.trim()), prediction: [''], official_prediction: null });
    missing++;
  }
  const absent = BLINK_ALL_SUBTASKS.filter((s) => !subtasks.has(s));
  if (missing) warnings.push(`${missing} answers of ${answersFile} have no prediction: scored wrong, as BLINK's evaluate.py does`);
  if (relabelled) warnings.push(`${relabelled} items' own answer differs from ${answersFile}; the answer file wins`);
  if (unknown) warnings.push(`${unknown} predictions have no answer in ${answersFile}: left out`);
  if (absent.length && absent.length < BLINK_ALL_SUBTASKS.length)
    warnings.push(`official BLINK averages all 14 subtasks; these have no predictions and are left out of the mean: ${absent.join(', ')}`);
  return warnings;
}
