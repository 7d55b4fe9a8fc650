// HR-Bench 4K / 8K (DreamMr/HR-Bench): hr_bench_{4k,8k}.parquet (or the .tsv variant), columns index,
// question, answer, category (single = FSP, cross = FCP), A-D, cycle_category, image (a base64 string).
// Memory stays flat: items are listed without the image column, images are streamed for wanted rows only.
import * as fs from 'fs';
import * as path from 'path';

import { readDelimited } from '../io/delimited';
import { ParquetFile } from '../io/parquet';
import { hrbenchPrompt } from '../prompts';
import type { BenchmarkKey, EvalItem, ItemImages } from '../types';
import { LayoutError, OpenBenchmark, expectDir, idOf, text } from './common';

const META_COLUMNS = ['index', 'question', 'answer', 'category', 'A', 'B', 'C', 'D'];
const BASE64 = /^[A-Za-z0-9+/\r\n]*={0,2}\s*$/;

/** The image cell as encoded file bytes: base64 text (the published form), or raw bytes. */
export function decodeImageCell(cell: unknown): Buffer | { error: string } {
  if (cell === null || cell === undefined || cell === '') return { error: 'image cell is empty' };
  let s: string | undefined;
  if (typeof cell === 'string') s = cell;
  else if (cell instanceof Uint8Array) {
    const head = Buffer.from(cell.subarray(0, 64)).toString('latin1');
    if (!/^[A-Za-z0-9+/]+$/.test(head)) return Buffer.from(cell.buffer, cell.byteOffset, cell.byteLength);
    s = Buffer.from(cell).toString('latin1');
  } else return { error: `image cell has unexpected type ${typeof cell}` };
  if (!BASE64.test(s)) return { error: 'image cell is not valid base64' };
  const bytes = Buffer.from(s, 'base64');
  if (bytes.length === 0) return { error: 'image cell decodes to nothing' };
  return bytes;
}

export async function openHrbench(dataRoot: string, key: 'HRBench4K' | 'HRBench8K'): Promise<OpenBenchmark> {
  const root = expectDir(path.join(dataRoot, 'HR-Bench'), key);
  const stem = key === 'HRBench4K' ? 'hr_bench_4k' : 'hr_bench_8k';
  const parquet = path.join(root, `${stem}.parquet`);
  const tsv = path.join(root, `${stem}.tsv`);
  if (fs.existsSync(parquet)) return openParquet(parquet, key);
  if (fs.existsSync(tsv)) return openTsv(tsv, key);
  throw new LayoutError(`${key}: expected file ${parquet} (or ${tsv}) was not found`);
}

function hrItem(row: Record<string, unknown>, order: number, at: string, hasCycle: boolean): EvalItem {
  const question = text(row.question);
  const answer = (text(row.answer) ?? '').trim();
  const item: EvalItem = {
    id: idOf(row.index) ?? `row-${order}`,
    order,
    prompt: '',
    label: answer.slice(0, 1).toUpperCase(),
    category: text(row.category) ?? 'Unknown',
  };
  const options = { A: text(row.A), B: text(row.B), C: text(row.C), D: text(row.D) };
  // the non-empty option texts travel into the result file: VLMEvalKit's can_infer_text (the official
  // HR-Bench rule, src/eval/official/hrbench.ts) matches responses against them
  item.extra = { ...(hasCycle ? { cycle_category: text(row.cycle_category) ?? '' } : {}), options: nonEmptyOptions(options) };
  if (question === undefined || !item.label) item.error = `malformed row (${at}): needs question and answer`;
  else item.prompt = hrbenchPrompt(question, options);
  return item;
}

/** The options the prompt shows (empty cells left out, as VLMEvalKit's build_choices drops NaN cells). */
function nonEmptyOptions(options: Record<'A' | 'B' | 'C' | 'D', string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

async function openParquet(file: string, key: BenchmarkKey): Promise<OpenBenchmark> {
  const pq = await ParquetFile.open(file);
  try {
    const missing = [...META_COLUMNS, 'image'].filter((c) => !pq.columnNames.includes(c));
    if (missing.length) throw new LayoutError(`${key}: ${file} has no column ${missing.join(', ')}`);
    const hasCycle = pq.columnNames.includes('cycle_category');
    const items: EvalItem[] = [];
    for await (const { index, row } of pq.rows(hasCycle ? [...META_COLUMNS, 'cycle_category'] : META_COLUMNS))
      items.push(hrItem(row!, items.length, `${file} row ${index}`, hasCycle));
    return {
      key,
      source: file,
      items,
      images: async function* (wanted): AsyncGenerator<ItemImages> {
        const byRow = new Map(wanted.map((w) => [w.order, w]));
        for await (const { index, row } of pq.rows(['image'], { want: (r) => byRow.has(r) })) {
          if (!row) continue;
          const item = byRow.get(index)!;
          const img = decodeImageCell(row.image);
          yield Buffer.isBuffer(img) ? { item, images: [img] } : { item, error: img.error };
        }
      },
      close: () => pq.close(),
    };
  } catch (err) {
    await pq.close();
    throw err;
  }
}

async function openTsv(file: string, key: BenchmarkKey): Promise<OpenBenchmark> {
  const items: EvalItem[] = [];
  for await (const rec of readDelimited(file, '\t')) {
    if (rec.record === 1) {
      const missing = [...META_COLUMNS, 'image'].filter((c) => !(c in rec.fields));
      if (missing.length) throw new LayoutError(`${key}: ${file} has no column ${missing.join(', ')}`);
    }
    const at = `${file} record ${rec.record}`;
    const item = hrItem(rec.fields, items.length, at, 'cycle_category' in rec.fields);
    if (rec.malformed && !item.error) item.error = `malformed row (${at}): ${rec.malformed}`;
    items.push(item);
  }
  return {
    key,
    source: file,
    items,
    images: async function* (wanted): AsyncGenerator<ItemImages> {
      const byRow = new Map(wanted.map((w) => [w.order, w]));
      const last = Math.max(-1, ...byRow.keys());
      let row = 0;
      for await (const rec of readDelimited(file, '\t')) {
        const item = byRow.get(row++);
        if (!item) continue;
        const img = decodeImageCell(rec.fields.image);
        yield Buffer.isBuffer(img) ? { item, images: [img] } : { item, error: img.error };
        if (row > last) break;
      }
    },
    close: async () => {},
  };
}
