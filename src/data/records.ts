// LLaVA-style training records (method.md §2.3, benchmarks.md §6.2):
//   {dataset?, image: string | string[], conversations: [{from: human|gpt, value}...], bboxes: [[x0,y0,x1,y1]...]}
// A file must be a JSON list (else the whole run stops with an error naming it); each record is checked when
// the stream reaches it, and a bad one is a counted skip (`malformed_record`), never a crash.
//
// Choices where upstream would crash its data worker instead (method.md §5.1 B6 restarts the shard):
// - conversations must alternate human/gpt, starting with human, with an even count (upstream pairs turns j, j+1
//   and maps human->user, gpt->assistant);
// - `bboxes` must be present and a list (a missing key is a KeyError upstream); an empty list is allowed and
//   becomes one dummy box (method.md §2.6);
// - `image` must be a non-empty string or a non-empty list of non-empty strings.
import * as fs from 'fs';

import { SampleSkip } from './skips';

export interface Turn {
  from: 'human' | 'gpt';
  value: string;
}

export interface LlavaRecord {
  /** the `dataset` field (drives the image-path mapping) */
  dataset?: string;
  images: string[];
  conversations: Turn[];
  /** raw entries of `bboxes`, checked later by boxes.ts */
  bboxes: unknown[];
}

/** Loads one data file: a JSON list of records (left unchecked here). */
export function loadRecordFile(file: string): unknown[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read the data file ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (!Array.isArray(json)) throw new Error(`${file}: a data file must be a JSON list of LLaVA records`);
  return json;
}

function malformed(what: string): never {
  throw new SampleSkip('malformed_record', what);
}

/** Checks one raw record; throws SampleSkip('malformed_record') naming the first fault. */
export function parseRecord(raw: unknown): LlavaRecord {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) malformed('the record is not an object');
  const o = raw as Record<string, unknown>;
  if (o.dataset !== undefined && o.dataset !== null && typeof o.dataset !== 'string') malformed('dataset is not a string');

  const img = o.image;
  const images = typeof img === 'string' ? [img] : img;
  if (!Array.isArray(images) || images.length === 0) malformed('image must be a path or a non-empty list of paths');
  if (!images.every((p) => typeof p === 'string' && p.length > 0)) malformed('image lists something other than a non-empty path');

  const conv = o.conversations;
  if (!Array.isArray(conv) || conv.length === 0) malformed('conversations must be a non-empty list');
  if (conv.length % 2 !== 0) malformed(`conversations has ${conv.length} turns; it must alternate human/gpt in pairs`);
  const turns: Turn[] = conv.map((t, i) => {
    if (typeof t !== 'object' || t === null) malformed(`conversation turn ${i} is not an object`);
    const { from, value } = t as Record<string, unknown>;
    const want = i % 2 === 0 ? 'human' : 'gpt';
    if (from !== want) malformed(`conversation turn ${i} is from ${JSON.stringify(from)}, expected ${want}`);
    if (typeof value !== 'string') malformed(`conversation turn ${i} has no string value`);
    return { from: want, value };
  });

  if (!Array.isArray(o.bboxes)) malformed('bboxes must be a list of [x0, y0, x1, y1] boxes');
  return { dataset: (o.dataset as string | null | undefined) ?? undefined, images: images as string[], conversations: turns, bboxes: o.bboxes };
}
