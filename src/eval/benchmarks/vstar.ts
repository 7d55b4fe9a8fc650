// V* Bench (craigwu/vstar_bench): test_questions.jsonl rows {image, text, category, question_id, label}; the
// image path is relative to the benchmark folder (direct_attributes/, relative_position/).
import * as path from 'path';

import { readJsonl } from '../io/jsonl';
import { vstarPrompt } from '../prompts';
import type { EvalItem, ItemImages } from '../types';
import { OpenBenchmark, expectFile, idOf, imageFile, text } from './common';

export async function openVstar(dataRoot: string): Promise<OpenBenchmark> {
  const root = path.join(dataRoot, 'vstar_bench');
  const file = expectFile(path.join(root, 'test_questions.jsonl'), 'VSTAR');
  const items: EvalItem[] = [];
  const imageOf = new Map<number, string>();
  for await (const line of readJsonl(file)) {
    const order = items.length;
    if ('error' in line) {
      items.push({ id: `line-${line.line}`, order, prompt: '', label: '', category: 'Unknown', error: `malformed row (${file} line ${line.line}): ${line.error}` });
      continue;
    }
    const v = line.value;
    const item: EvalItem = {
      id: idOf(v.question_id) ?? `line-${line.line}`,
      order,
      prompt: '',
      label: (text(v.label) ?? '').trim().toUpperCase(),
      category: text(v.category) ?? 'Unknown',
    };
    const t = text(v.text);
    const image = text(v.image);
    if (t === undefined || !image || !item.label) item.error = `malformed row (${file} line ${line.line}): needs text, image and label`;
    else {
      item.prompt = vstarPrompt(t);
      imageOf.set(order, path.join(root, image));
    }
    items.push(item);
  }
  return {
    key: 'VSTAR',
    source: file,
    items,
    images: async function* (wanted): AsyncGenerator<ItemImages> {
      for (const item of [...wanted].sort((a, b) => a.order - b.order)) {
        const img = imageFile(imageOf.get(item.order) ?? '');
        yield typeof img === 'object' && 'error' in img ? { item, error: img.error } : { item, images: [img] };
      }
    },
    close: async () => {},
  };
}
