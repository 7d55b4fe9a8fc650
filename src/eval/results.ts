// Result files: where they live, how they are written (whole file, atomically, after every item, so kill -9
// loses at most the item in flight), how a re-run resumes from them, and how shard files merge.
//
//   <out>/<BenchDir>/decoding_by_steps/<run_name>/step<S>.json        latent runs (and --steps 0)
//   <out>/<BenchDir>/decoding_by_baseline/<run_name>/baseline.json    --base-model
//   step<S>.shard-<i>-of-<n>.json beside it while `--shard i/n` runs; merged into step<S>.json at the end
//
// A file is a JSON list: a summary object first (never trusted by `eval score`), then the items.
import * as fs from 'fs';
import * as path from 'path';

import { BENCHMARKS } from './benchmarks';
import type { BenchmarkKey, StoredItem } from './types';
import { isErrorItem } from './types';

export const BASELINE_RUN = 'baseline';

/** Run key: `step<S>` for a latent quota (0 included), `baseline` for --base-model. */
export function runKey(latentSteps: number | null): string {
  return latentSteps === null ? BASELINE_RUN : `step${latentSteps}`;
}

export function resultPath(outDir: string, bench: BenchmarkKey, runName: string, key: string): string {
  const folder = key === BASELINE_RUN ? 'decoding_by_baseline' : 'decoding_by_steps';
  return path.join(outDir, BENCHMARKS[bench].outDir, folder, runName, `${key}.json`);
}

export interface Shard {
  index: number; // 0-based, like upstream's EVAL_PROCESS_ID
  count: number;
}

/** "i/n" with 0 <= i < n. */
export function parseShard(s: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  if (!m) throw new Error(`--shard must look like i/n (e.g. 0/4), got ${s}`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new Error(`--shard ${s}: need 0 <= i < n`);
  return { index, count };
}

export function shardPath(finalPath: string, shard: Shard): string {
  return finalPath.replace(/\.json$/, `.shard-${shard.index}-of-${shard.count}.json`);
}

const SHARD_FILE = /\.shard-(\d+)-of-(\d+)\.json$/;

/** Shard files lying beside a final result file (any n). */
export function siblingShardFiles(finalPath: string): string[] {
  const dir = path.dirname(finalPath);
  const stem = path.basename(finalPath, '.json');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(`${stem}.shard-`) && SHARD_FILE.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

/** Upstream's _get_dataset_chunk: contiguous chunks of size div n, the last takes the remainder. */
export function shardSlice<T>(items: T[], shard: Shard): T[] {
  const size = Math.floor(items.length / shard.count);
  const start = shard.index * size;
  const end = shard.index === shard.count - 1 ? items.length : start + size;
  return items.slice(start, end);
}

/** The items of a result file (ours or upstream's), the leading summary object dropped. */
export function readResultItems(file: string): { summary: Record<string, unknown> | null; items: StoredItem[] } {
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file} is not a readable JSON result file: ${(err as Error).message}`);
  }
  if (!Array.isArray(data)) throw new Error(`${file} is not a JSON list of results`);
  let summary: Record<string, unknown> | null = null;
  const items: StoredItem[] = [];
  data.forEach((el, i) => {
    const isObject = el !== null && typeof el === 'object' && !Array.isArray(el);
    if (isObject && 'id' in el) items.push(el as StoredItem);
    else if (i === 0 && isObject) summary = el as Record<string, unknown>;
    else throw new Error(`${file}: element ${i} is neither the summary nor an item with an id`);
  });
  return { summary, items };
}

/** Write-then-rename, so a reader (or a crash) only ever sees the old or the new file. */
export function writeJsonAtomic(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, JSON.stringify(value, null, 1) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/**
 * The items of one result file in memory, keyed by id, flushed whole after each change. Items are written
 * in loader order (`rank`), ids the current loader does not know (e.g. past a smaller --limit) after them.
 */
export class ResultStore {
  private readonly items = new Map<string, StoredItem>();

  constructor(
    readonly file: string,
    private readonly rank: Map<string, number>,
    private readonly makeSummary: (items: StoredItem[]) => Record<string, unknown>,
  ) {}

  /** Adds items read from existing files (the final file, shard files); later sources never override. */
  absorb(items: StoredItem[]): void {
    for (const it of items) if (!this.items.has(String(it.id))) this.items.set(String(it.id), it);
  }

  has(id: string | number): boolean {
    return this.items.has(String(id));
  }

  get(id: string | number): StoredItem | undefined {
    return this.items.get(String(id));
  }

  put(item: StoredItem): void {
    this.items.set(String(item.id), item);
  }

  /** Drops error items so that --retry-errors computes them again. */
  dropErrors(): number {
    let n = 0;
    for (const [k, v] of this.items) if (isErrorItem(v)) (this.items.delete(k), n++);
    return n;
  }

  ordered(): StoredItem[] {
    const known: [number, StoredItem][] = [];
    const unknown: StoredItem[] = [];
    for (const [k, v] of this.items) {
      const r = this.rank.get(k);
      if (r === undefined) unknown.push(v);
      else known.push([r, v]);
    }
    known.sort((a, b) => a[0] - b[0]);
    return [...known.map(([, v]) => v), ...unknown];
  }

  get size(): number {
    return this.items.size;
  }

  flush(): void {
    const items = this.ordered();
    writeJsonAtomic(this.file, [this.makeSummary(items), ...items]);
  }
}

/**
 * Exclusive lock for a merge (two shards finishing at once): created with O_EXCL; a lock older than
 * `staleMs` is taken to be left by a dead process and taken over.
 */
export function withLock<T>(lockFile: string, fn: () => T, staleMs = 10 * 60 * 1000): T | undefined {
  try {
    fs.writeFileSync(lockFile, String(process.pid), { flag: 'wx' });
  } catch {
    try {
      if (Date.now() - fs.statSync(lockFile).mtimeMs < staleMs) return undefined;
      fs.writeFileSync(lockFile, String(process.pid));
    } catch {
      return undefined;
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lockFile, { force: true });
  }
}
