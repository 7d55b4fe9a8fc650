// MMVP (MMVP/MMVP): Questions.csv (Index, Question, Options, Correct Answer) plus "MMVP Images/<Index>.jpg".
// Upstream scores the original CSV per question; --mmvp-fix-pairs swaps the two known swapped answer pairs.
import * as path from 'path';

import { readDelimited } from '../io/delimited';
import { mmvpPrompt } from '../prompts';
import type { EvalItem, ItemImages } from '../types';
import { BenchmarkOptions, OpenBenchmark, expectFile, idOf, imageFile } from './common';

/** Pairs whose gold answers are swapped in the original CSV (lmms-eval #1018, tsb0601/MMVP #30). */
export const MMVP_SWAPPED_PAIRS: [number, number][] = [
  [99, 100],
  [279, 280],
];

const COLUMNS = ['Index', 'Question', 'Options', 'Correct Answer'];

/** "(a)" -> "A". */
export function mmvpLabel(answer: string): string {
  const m = /^\(?\s*([A-Za-z])\s*\)?/.exec(answer.trim());
  return m ? m[1].toUpperCase() : '';
}

export async function openMmvp(dataRoot: string, opts: BenchmarkOptions): Promise<OpenBenchmark> {
  const root = path.join(dataRoot, 'MMVP');
  const csv = expectFile(path.join(root, 'Questions.csv'), 'MMVP');
  const items: EvalItem[] = [];
  for await (const rec of readDelimited(csv, ',')) {
    if (rec.record === 1) {
      const missing = COLUMNS.filter((c) => !(c in rec.fields));
      if (missing.length) throw new Error(`MMVP: ${csv} has no column ${missing.join(', ')}`);
    }
    const f = rec.fields;
    const id = idOf(f.Index) ?? `row-${rec.record}`;
    const item: EvalItem = { id, order: items.length, prompt: '', label: mmvpLabel(f['Correct Answer'] ?? ''), category: 'Unknown' };
    if (rec.malformed) item.error = `malformed row (${csv} record ${rec.record}): ${rec.malformed}`;
    else if (!f.Question || !f.Options || !item.label) item.error = `malformed row (${csv} record ${rec.record}): empty Question, Options or Correct Answer`;
    else item.prompt = mmvpPrompt(f.Question, f.Options);
    items.push(item);
  }
  if (opts.mmvpFixPairs) fixPairs(items);
  return {
    key: 'MMVP',
    source: csv,
    items,
    images: async function* (wanted): AsyncGenerator<ItemImages> {
      for (const item of [...wanted].sort((a, b) => a.order - b.order)) {
        const img = imageFile(path.join(root, 'MMVP Images', `${item.id}.jpg`));
        yield typeof img === 'object' && 'error' in img ? { item, error: img.error } : { item, images: [img] };
      }
    },
    close: async () => {},
  };
}

function fixPairs(items: EvalItem[]): void {
  for (const [a, b] of MMVP_SWAPPED_PAIRS) {
    const x = items.find((i) => i.id === a);
    const y = items.find((i) => i.id === b);
    if (x && y) [x.label, y.label] = [y.label, x.label];
  }
}
