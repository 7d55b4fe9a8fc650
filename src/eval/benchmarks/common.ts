// What every benchmark loader provides, and small helpers they share.
import * as fs from 'fs';
import * as path from 'path';

import type { BenchmarkKey, EvalItem, ImageInput, ItemImages } from '../types';

/** qwen-vl-utils defaults, the first of upstream's two resizes (docs/method.md §4.2). */
export const EVAL_MIN_PIXELS = 3136; // 4 * 28 * 28
export const EVAL_MAX_PIXELS = 12845056; // 16384 * 28 * 28

export interface BenchmarkOptions {
  /** 'upstream' (5 subtasks, 697 val questions), 'all' (14), or a list of BLINK config names */
  blinkSubtasks?: 'upstream' | 'all' | string[];
  /** swap the gold answers of MMVP pairs 99/100 and 279/280 (the corrected labels) */
  mmvpFixPairs?: boolean;
  /** BLINK's user text: upstream's (question + "Options:" + letters + instruction) or BLINK's own `prompt` field */
  blinkPrompt?: 'upstream' | 'official';
}

/** A benchmark opened on a data root: its items in upstream order, and a lazy image reader. */
export interface OpenBenchmark {
  key: BenchmarkKey;
  /** the file(s) the items came from, for logs and summaries */
  source: string;
  items: EvalItem[];
  /** images of `wanted` (a subset of items), yielded in item order; a bad image gives an error entry */
  images(wanted: EvalItem[]): AsyncGenerator<ItemImages>;
  close(): Promise<void>;
}

export class LayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LayoutError';
  }
}

/** Throws a one-line error naming the file that was expected. */
export function expectFile(file: string, bench: string, hint = ''): string {
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) throw new LayoutError(`${bench}: expected file ${file} was not found${hint ? ` (${hint})` : ''}`);
  return file;
}

export function expectDir(dir: string, bench: string): string {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new LayoutError(`${bench}: expected folder ${dir} was not found`);
  return dir;
}

/** A string cell, or undefined when absent/null; numbers and bigints become their decimal text. */
export function text(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  return undefined;
}

/** An id as upstream keeps it: integers stay numbers, everything else a string. */
export function idOf(v: unknown): string | number | undefined {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return /^-?\d+$/.test(v.trim()) && Number.isSafeInteger(Number(v)) ? Number(v) : v;
  return undefined;
}

/** An image file next to the data: its path if it exists, else an error text. */
export function imageFile(file: string): ImageInput | { error: string } {
  return fs.existsSync(file) ? file : { error: `image not found: ${file}` };
}

/** Files in dir whose names match re, sorted (HF shards: val-00000-of-00002.parquet, ...). */
export function listMatching(dir: string, re: RegExp): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => re.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

/**
 * Turns later duplicates of an id into error items under a suffixed id (`<id>#2`), so that results, which
 * are keyed by id for resume, never mix two questions.
 */
export function markDuplicateIds(items: EvalItem[]): void {
  const seen = new Map<string, number>();
  for (const item of items) {
    const key = String(item.id);
    const count = (seen.get(key) ?? 0) + 1;
    seen.set(key, count);
    if (count > 1) {
      item.id = `${key}#${count}`;
      item.error = `duplicate id ${key} (occurrence ${count})`;
    }
  }
}
