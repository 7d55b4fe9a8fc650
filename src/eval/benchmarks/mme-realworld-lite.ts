// MME-RealWorld-Lite (yifanzhang114/MME-RealWorld-Lite): data/MME-RealWorld-Lite.json plus data/imgs/, either
// extracted or only as data.zip, which is read in place (eval never writes into --data-root).
// Upstream drops items whose image is missing; here they become error items, counted and reported.
import * as fs from 'fs';
import * as path from 'path';

import { ZipArchive } from '../io/zip';
import { mmeRealWorldPrompt } from '../prompts';
import type { EvalItem, ItemImages } from '../types';
import { LayoutError, OpenBenchmark, idOf, text } from './common';

const JSON_NAME = 'MME-RealWorld-Lite.json';

export async function openMmeRealWorldLite(dataRoot: string): Promise<OpenBenchmark> {
  const root = path.join(dataRoot, 'MME-RealWorld-Lite');
  const folderJson = path.join(root, 'data', JSON_NAME);
  const zipFile = path.join(root, 'data.zip');
  if (fs.existsSync(folderJson)) {
    const imgs = path.join(root, 'data', 'imgs');
    return build(folderJson, readJson(fs.readFileSync(folderJson, 'utf8'), folderJson), async (name) => {
      const file = path.join(imgs, name);
      return fs.existsSync(file) ? file : { error: `image not found: ${file}` };
    });
  }
  if (fs.existsSync(zipFile)) {
    const zip = await ZipArchive.open(zipFile);
    try {
      const jsonEntry = [...zip.entries.keys()].filter((n) => path.posix.basename(n) === JSON_NAME).sort((a, b) => a.length - b.length)[0];
      if (!jsonEntry) throw new LayoutError(`MME-RealWorld-Lite: expected member data/${JSON_NAME} in ${zipFile} was not found`);
      const imgDir = path.posix.join(path.posix.dirname(jsonEntry), 'imgs');
      const records = readJson((await zip.read(jsonEntry)).toString('utf8'), `${zipFile}:${jsonEntry}`);
      const bench = build(`${zipFile}:${jsonEntry}`, records, async (name) => {
        const member = path.posix.join(imgDir, name);
        if (!zip.entries.has(member)) return { error: `image not found: ${zipFile}:${member}` };
        try {
          return await zip.read(member);
        } catch (err) {
          return { error: (err as Error).message };
        }
      });
      bench.close = async () => zip.close();
      return bench;
    } catch (err) {
      zip.close();
      throw err;
    }
  }
  throw new LayoutError(`MME-RealWorld-Lite: expected file ${folderJson} (or ${zipFile}) was not found`);
}

function readJson(source: string, where: string): unknown[] {
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (err) {
    throw new Error(`MME-RealWorld-Lite: ${where} is not valid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(value)) throw new Error(`MME-RealWorld-Lite: ${where} is not a JSON list of questions`);
  return value;
}

function build(
  source: string,
  records: unknown[],
  image: (name: string) => Promise<string | Buffer | { error: string }>,
): OpenBenchmark {
  const items: EvalItem[] = [];
  const imageOf = new Map<number, string>();
  records.forEach((rec, order) => {
    const r = (rec && typeof rec === 'object' ? rec : {}) as Record<string, unknown>;
    const choices = Array.isArray(r['Answer choices']) ? r['Answer choices'].map((c) => text(c)) : undefined;
    const subtask = text(r.Subtask);
    const item: EvalItem = {
      id: idOf(r.Question_id) ?? `item-${order}`,
      order,
      prompt: '',
      label: (text(r['Ground truth']) ?? '').trim().slice(0, 1).toUpperCase(),
      category: subtask ?? text(r.Category) ?? 'Unknown',
      // fine_category: the JSON's Category (e.g. "position/attribute"), which the official scorer breaks results down by
      extra: { task: text(r.Task) ?? '', subtask: subtask ?? '', ...(text(r.Category) ? { fine_category: text(r.Category) } : {}) },
    };
    const t = text(r.Text);
    const img = text(r.Image);
    if (t === undefined || !img || !item.label || !choices || choices.some((c) => c === undefined))
      item.error = `malformed record ${order} in ${source}: needs Text, Image, Answer choices and Ground truth`;
    else {
      item.prompt = mmeRealWorldPrompt(t, choices as string[]);
      // the official scorer (eval_your_results.py) maps a short letter-less response to the first choice
      // string containing it and reads that choice's second character: src/eval/official/mme-realworld.ts
      item.extra = { ...item.extra, choices: choices as string[] };
      imageOf.set(order, img);
    }
    items.push(item);
  });
  return {
    key: 'MME-RealWorld-Lite',
    source,
    items,
    images: async function* (wanted): AsyncGenerator<ItemImages> {
      for (const item of [...wanted].sort((a, b) => a.order - b.order)) {
        const got = await image(imageOf.get(item.order) ?? '');
        yield typeof got === 'object' && !Buffer.isBuffer(got) ? { item, error: got.error } : { item, images: [got] };
      }
    },
    close: async () => {},
  };
}
