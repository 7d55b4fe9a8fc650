// BLINK (BLINK-Benchmark/BLINK): one folder per subtask config holding val-*.parquet (and test-*.parquet,
// whose answers are hidden and which upstream never reads). Images are HF Image structs {bytes, path}
// in image_1..image_4, null when absent. Upstream evaluates 5 configs of val (697 questions). `datasets`
// writes 100-row row groups; one too big to hold is streamed struct field by field (io/parquet.ts).
import * as fs from 'fs';
import * as path from 'path';

import { blinkOfficialPrompt, blinkPrompt } from '../prompts';
import { ParquetFile } from '../io/parquet';
import type { EvalItem, ImageInput, ItemImages } from '../types';
import { BenchmarkOptions, LayoutError, OpenBenchmark, expectDir, idOf, listMatching, text } from './common';

export const BLINK_UPSTREAM_SUBTASKS = ['Counting', 'IQ_Test', 'Jigsaw', 'Relative_Reflectance', 'Spatial_Relation'];

export const BLINK_ALL_SUBTASKS = [
  'Art_Style', 'Counting', 'Forensic_Detection', 'Functional_Correspondence', 'IQ_Test', 'Jigsaw',
  'Multi-view_Reasoning', 'Object_Localization', 'Relative_Depth', 'Relative_Reflectance',
  'Semantic_Correspondence', 'Spatial_Relation', 'Visual_Correspondence', 'Visual_Similarity',
];

const IMAGE_COLUMNS = ['image_1', 'image_2', 'image_3', 'image_4'];

export function blinkSubtasks(choice: BenchmarkOptions['blinkSubtasks']): string[] {
  if (choice === undefined || choice === 'upstream') return BLINK_UPSTREAM_SUBTASKS;
  if (choice === 'all') return BLINK_ALL_SUBTASKS;
  for (const name of choice)
    if (!BLINK_ALL_SUBTASKS.includes(name)) throw new LayoutError(`BLINK: unknown subtask ${name} (known: ${BLINK_ALL_SUBTASKS.join(', ')})`);
  return choice;
}

/** "(A)" -> "A" (upstream: answer[1] if len > 1 else answer[0], upper-cased). */
export function blinkLabel(answer: string): string {
  return (answer.length > 1 ? answer[1] : answer[0] ?? '').toUpperCase();
}

interface Where {
  file: string;
  row: number;
}

export async function openBlink(dataRoot: string, opts: BenchmarkOptions): Promise<OpenBenchmark> {
  const root = expectDir(path.join(dataRoot, 'BLINK'), 'BLINK');
  const items: EvalItem[] = [];
  const where = new Map<number, Where>();
  const official = opts.blinkPrompt === 'official';
  for (const config of blinkSubtasks(opts.blinkSubtasks)) {
    const files = listMatching(path.join(root, config), /^val-.*\.parquet$/);
    if (files.length === 0) throw new LayoutError(`BLINK: expected file ${path.join(root, config, 'val-*.parquet')} was not found`);
    for (const file of files) {
      const pq = await ParquetFile.open(file);
      try {
        if (official && !pq.columnNames.includes('prompt')) throw new LayoutError(`BLINK: ${file} has no column prompt (needed by --blink-prompt official)`);
        for await (const { index, row } of pq.rows(['idx', 'question', 'choices', 'answer', ...(official ? ['prompt'] : [])])) {
          const item = blinkItem(row!, config, items.length, `${file} row ${index}`, official);
          items.push(item);
          where.set(item.order, { file, row: index });
        }
      } finally {
        await pq.close();
      }
    }
  }
  return {
    key: 'BLINK',
    source: root,
    items,
    images: (wanted) => blinkImages(wanted, where),
    close: async () => {},
  };
}

function blinkItem(row: Record<string, unknown>, config: string, order: number, at: string, official: boolean): EvalItem {
  const id = idOf(text(row.idx)) ?? `${config}:${order}`;
  const question = text(row.question);
  const answer = text(row.answer);
  const choices = Array.isArray(row.choices) ? row.choices.map((c) => text(c)) : undefined;
  const base = { id, order, category: config, label: answer ? blinkLabel(answer.trim()) : '' };
  if (question === undefined) return { ...base, prompt: '', error: `malformed row (${at}): no question` };
  if (!choices || choices.length === 0 || choices.some((c) => c === undefined))
    return { ...base, prompt: '', error: `malformed row (${at}): choices is not a list of strings` };
  if (!answer) return { ...base, prompt: '', error: `malformed row (${at}): no answer` };
  // the option count goes into the result item: BLINK's official extraction looks for "(A)".."(<last>)" only
  const extra = { options: choices.length };
  if (!official) return { ...base, prompt: blinkPrompt(question, choices as string[]), extra };
  const own = text(row.prompt);
  if (!own) return { ...base, prompt: '', error: `malformed row (${at}): no prompt (--blink-prompt official)` };
  return { ...base, prompt: blinkOfficialPrompt(own, config), extra };
}

async function* blinkImages(wanted: EvalItem[], where: Map<number, Where>): AsyncGenerator<ItemImages> {
  const sorted = [...wanted].sort((a, b) => a.order - b.order);
  let i = 0;
  while (i < sorted.length) {
    const file = where.get(sorted[i].order)!.file;
    const byRow = new Map<number, EvalItem>();
    for (; i < sorted.length && where.get(sorted[i].order)!.file === file; i++) byRow.set(where.get(sorted[i].order)!.row, sorted[i]);
    const pq = await ParquetFile.open(file);
    try {
      const columns = IMAGE_COLUMNS.filter((c) => pq.columnNames.includes(c));
      if (!columns.includes('image_1')) throw new LayoutError(`BLINK: ${file} has no column image_1`);
      for await (const { index, row } of pq.rows(columns, { want: (r) => byRow.has(r) })) {
        if (!row) continue;
        const item = byRow.get(index)!;
        yield imagesOfRow(item, row, columns, path.dirname(file));
      }
    } finally {
      await pq.close();
    }
  }
}

/** Non-null image_k in order; an HF Image struct with bytes, or only a path relative to the parquet's folder. */
function imagesOfRow(item: EvalItem, row: Record<string, unknown>, columns: string[], dir: string): ItemImages {
  const images: ImageInput[] = [];
  for (const c of columns) {
    const cell = row[c] as { bytes?: unknown; path?: unknown } | null | undefined;
    if (cell === null || cell === undefined) continue;
    if (cell.bytes instanceof Uint8Array && cell.bytes.length > 0) {
      images.push(Buffer.from(cell.bytes.buffer, cell.bytes.byteOffset, cell.bytes.byteLength));
    } else if (typeof cell.path === 'string' && cell.path !== '') {
      const file = path.isAbsolute(cell.path) ? cell.path : path.join(dir, cell.path);
      if (!fs.existsSync(file)) return { item, error: `${c}: no bytes and image file not found: ${file}` };
      images.push(file);
    } else {
      return { item, error: `${c}: image struct has neither bytes nor path` };
    }
  }
  if (images.length === 0) return { item, error: 'row has no image' };
  return { item, images };
}
