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
