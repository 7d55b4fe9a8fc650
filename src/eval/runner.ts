// The eval loop: for each benchmark and each run (one per --steps value, or `baseline`), generate the
// questions the result file does not hold yet, score them, and write the file after every item.
// The result file is the source of truth: finished items are never recomputed (--retry-errors aside).
import * as fs from 'fs';
import sharp from 'sharp';

import { openBenchmark } from './benchmarks';
import { BenchmarkOptions, EVAL_MAX_PIXELS, EVAL_MIN_PIXELS, OpenBenchmark } from './benchmarks/common';
import { extractAll, normalizeLabel } from './extract';
import type { ScoreOptions } from './metrics';
import { EvalGenerator, EvalItemError } from './generator';
import { OfficialPolicy, officialPolicy, officialVerdict } from './official';
import { RunMeta, resultFileSummary } from './report';
import { ResultStore, Shard, readResultItems, resultPath, runKey, shardPath, shardSlice, siblingShardFiles, withLock } from './results';
import type { BenchmarkKey, ErrorItem, EvalItem, ImageInput, ItemImages, ResultItem, StoredItem } from './types';
import { isErrorItem } from './types';

export interface PixelLimits {
  min: number;
  max: number;
}

export interface RunnerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface RunnerProgress {
  update(done: number, extra?: string): void;
  stop(): void;
}

export interface EvalOptions {
  dataRoot: string;
  outputDir: string;
  benchmarks: BenchmarkKey[];
  /** latent quotas, one run each (ignored with baseModel) */
  steps: number[];
  baseModel: boolean;
  /** folder under decoding_by_steps / decoding_by_baseline */
  runName: string;
  /** recorded in the summaries */
  model: string;
  limit?: number;
  shard?: Shard;
  retryErrors?: boolean;
  maxNewTokens: number;
  singleResize: boolean;
  /** second-stage limits overriding the checkpoint processor's (unset: the checkpoint's, as upstream) */
  processorPixels?: { min?: number; max?: number };
  /** first-stage resize limits per benchmark (default: qwen-vl-utils' 3136..12845056) */
  pixels?: Partial<Record<BenchmarkKey, PixelLimits>>;
  benchmarkOptions?: BenchmarkOptions;
  /** called once, when the first question needs generating (a fully finished re-run never loads the model) */
  getGenerator: () => Promise<EvalGenerator>;
  logger: RunnerLogger;
  progress: (label: string, total: number) => RunnerProgress;
  /** read each image's header with sharp before generating (a bad image becomes an error item); default true */
  checkImages?: boolean;
  /** official scoring choices of the summaries and stored verdicts (--judge, --hrbench-rule); unset: the defaults */
  scoring?: ScoreOptions;
}

export interface RunOutcome {
  benchmark: BenchmarkKey;
  run: string;
  /** the file this process wrote (a shard file under --shard) */
  file: string;
  /** items this process was responsible for (after --limit and --shard) */
  targets: number;
  alreadyDone: number;
  generated: number;
  newErrors: number;
  complete: boolean;
  /** under --shard: whether this process merged all shards into the final file */
  merged?: boolean;
}

export async function runEval(opts: EvalOptions): Promise<RunOutcome[]> {
  let generator: Promise<EvalGenerator> | undefined;
  const getGenerator = () => (generator ??= opts.getGenerator());
  const outcomes: RunOutcome[] = [];
  try {
    for (const key of opts.benchmarks) {
      const bench = await openBenchmark(key, opts.dataRoot, opts.benchmarkOptions);
      try {
        const runs: (number | null)[] = opts.baseModel ? [null] : opts.steps;
        for (const latent of runs) outcomes.push(await runOne(opts, bench, latent, getGenerator));
      } finally {
        await bench.close();
      }
    }
  } finally {
    if (generator) await (await generator).close?.();
  }
  return outcomes;
}

function errorItem(item: EvalItem, error: string): ErrorItem {
  return { id: item.id, label: item.label, category: item.category, ...(item.extra ?? {}), error };
}

/** A scored item; `extracted.official` / `correct.official` are for reading only (eval score recomputes them). */
function resultItem(bench: BenchmarkKey, item: EvalItem, text: string, policy: OfficialPolicy): ResultItem {
  const { extracted, correct } = extractAll(text, item.label);
  const stored = { id: item.id, label: item.label, category: item.category, ...(item.extra ?? {}) };
  const official = officialVerdict(bench, text, stored, normalizeLabel(item.label), policy);
  return {
    ...stored,
    prediction: [text],
    extracted: { ...extracted, official: official.letter },
    correct: { ...correct, official: official.correct },
    ...(official.undecided ? { official_settled: official.settled } : {}),
  };
}

async function checkImages(images: ImageInput[]): Promise<string | undefined> {
  for (let i = 0; i < images.length; i++) {
    try {
      const m = await sharp(images[i]).metadata();
      if (!m.width || !m.height) return `image ${i + 1} has no size`;
    } catch (err) {
      return `unreadable image${images.length > 1 ? ` ${i + 1}` : ''}: ${(err as Error).message}`;
    }
  }
  return undefined;
}

/**
 * Settings that change what a question's stored answer means. A result file written under other values must not be
 * resumed into (its finished items would be mixed with answers to other prompts, pixel limits or labels): one-line
 * error. Keys absent from older files take the default they had then.
 */
const RESUME_KEYS: [key: string, absent: unknown][] = [
  ['max_new_tokens', undefined],
  ['resize', undefined],
  ['min_pixels', undefined],
  ['max_pixels', undefined],
  ['processor_min_pixels', undefined],
  ['processor_max_pixels', undefined],
  ['blinkPrompt', 'upstream'],
  ['mmvpFixPairs', false],
];

export function checkResumable(file: string, summary: Record<string, unknown> | null, config: Record<string, unknown>): void {
  const stored = summary?.config;
  if (typeof stored !== 'object' || stored === null) return; // upstream's files and bare lists record no settings
  for (const [key, absent] of RESUME_KEYS) {
    const was = (stored as Record<string, unknown>)[key] ?? absent;
    const now = config[key] ?? absent;
    if (JSON.stringify(was) !== JSON.stringify(now))
      throw new Error(`${file} was written with ${key} ${JSON.stringify(was)}, this run has ${JSON.stringify(now)}: use another --run-name (or --output-dir), or the same settings`);
  }
}

function readIfExists(file: string, config?: Record<string, unknown>): StoredItem[] {
  if (!fs.existsSync(file)) return [];
  const { summary, items } = readResultItems(file);
  if (config) checkResumable(file, summary, config);
  return items;
}

async function runOne(opts: EvalOptions, bench: OpenBenchmark, latent: number | null, getGenerator: () => Promise<EvalGenerator>): Promise<RunOutcome> {
  const key = runKey(latent);
  const limited = opts.limit !== undefined ? bench.items.slice(0, opts.limit) : bench.items;
  const targets = opts.shard ? shardSlice(limited, opts.shard) : limited;
  const finalPath = resultPath(opts.outputDir, bench.key, opts.runName, key);
  const file = opts.shard ? shardPath(finalPath, opts.shard) : finalPath;
  const rank = new Map(bench.items.map((i) => [String(i.id), i.order]));
  const limits = opts.pixels?.[bench.key] ?? { min: EVAL_MIN_PIXELS, max: EVAL_MAX_PIXELS };
  const meta: RunMeta = {
    benchmark: bench.key,
    run: key,
    run_name: opts.runName,
    model: opts.model,
    latent_steps: latent,
    expected_total: limited.length,
    ...(opts.shard ? { shard: `${opts.shard.index}/${opts.shard.count}`, shard_expected: targets.length } : {}),
    config: {
      data: bench.source,
      max_new_tokens: opts.maxNewTokens,
      resize: opts.singleResize ? 'processor only (--single-resize)' : 'qwen-vl-utils then processor',
      min_pixels: limits.min,
      max_pixels: limits.max,
      ...(opts.processorPixels?.min !== undefined ? { processor_min_pixels: opts.processorPixels.min } : {}),
      ...(opts.processorPixels?.max !== undefined ? { processor_max_pixels: opts.processorPixels.max } : {}),
      ...(opts.benchmarkOptions ?? {}),
    },
  };

  // What is already done: this file, plus the final file (shard mode) or leftover shard files (merge).
  const finalItems = opts.shard ? readIfExists(finalPath, meta.config) : [];
  const finalIds = new Set(finalItems.filter((i) => !(opts.retryErrors && isErrorItem(i))).map((i) => String(i.id)));
  const store: ResultStore = new ResultStore(file, rank, (items) => resultFileSummary(meta, items, completeNow(), opts.scoring));
  const isDone = (id: string | number) => store.has(id) || finalIds.has(String(id));
  const completeNow = () => targets.every((t) => isDone(t.id));
  store.absorb(readIfExists(file, meta.config));
  const siblings = opts.shard ? [] : siblingShardFiles(finalPath);
  for (const s of siblings) store.absorb(readIfExists(s, meta.config));
  const dropped = opts.retryErrors ? store.dropErrors() : 0;

  const missing = targets.filter((t) => !isDone(t.id));
  const alreadyDone = targets.length - missing.length;
  opts.logger.info({ benchmark: bench.key, run: key, file, targets: targets.length, done: alreadyDone, todo: missing.length, retried_errors: dropped || undefined }, 'eval run');

  let generated = 0;
  let newErrors = 0;
  const progress = opts.progress(`${bench.key} ${key}`, targets.length);
  progress.update(alreadyDone);
  const images = bench.images(missing.filter((m) => !m.error))[Symbol.asyncIterator]();
  try {
    for (const item of missing) {
      let stored: StoredItem;
      if (item.error) stored = errorItem(item, item.error);
      else {
        const next = await images.next();
        const got = next.value as ItemImages | undefined;
        if (next.done || !got || got.item.order !== item.order) throw new Error(`${bench.key}: image reader out of step at item ${String(item.id)}`);
        stored = 'error' in got ? errorItem(item, got.error) : await generateOne(opts, bench.key, item, got.images, latent, limits, getGenerator);
      }
      if ('error' in stored) newErrors++;
      else generated++;
      store.put(stored);
      store.flush();
      progress.update(alreadyDone + generated + newErrors, newErrors ? `errors ${newErrors}` : '');
    }
  } finally {
    progress.stop();
    await images.return?.(undefined); // closes the files the image reader holds open
  }
  if (missing.length === 0 || siblings.length) store.flush(); // records the summary, folds in shard files
  const complete = completeNow();
  if (!opts.shard && complete) for (const s of siblings) fs.rmSync(s, { force: true });

  const outcome: RunOutcome = { benchmark: bench.key, run: key, file, targets: targets.length, alreadyDone, generated, newErrors, complete };
  if (opts.shard && complete) outcome.merged = mergeShards(opts, finalPath, limited, rank, meta);
  opts.logger.info({ benchmark: bench.key, run: key, generated, errors: newErrors, complete, merged: outcome.merged }, 'eval run finished');
  return outcome;
}

async function generateOne(
  opts: EvalOptions,
  benchKey: BenchmarkKey,
  item: EvalItem,
  images: ImageInput[],
  latent: number | null,
  limits: PixelLimits,
  getGenerator: () => Promise<EvalGenerator>,
): Promise<StoredItem> {
  if (opts.checkImages !== false) {
    const bad = await checkImages(images);
    if (bad) return errorItem(item, bad);
  }
  try {
    const gen = await getGenerator();
    const { text } = await gen.generate({
      images,
      prompt: item.prompt,
      minPixels: limits.min,
      maxPixels: limits.max,
      singleResize: opts.singleResize,
      processorMinPixels: opts.processorPixels?.min,
      processorMaxPixels: opts.processorPixels?.max,
      latentSteps: latent,
      maxNewTokens: opts.maxNewTokens,
    });
    return resultItem(benchKey, item, text, officialPolicy(opts.scoring));
  } catch (err) {
    if (err instanceof EvalItemError) return errorItem(item, err.message);
    throw err; // an engine failure stops the run; everything finished so far is on disk
  }
}

/**
 * Under --shard, the process that completes its slice tries to merge: when every shard file exists and
 * their union (with any earlier final file) holds every expected item, it writes the final file and
 * deletes the shard files. Returns whether it merged.
 */
function mergeShards(opts: EvalOptions, finalPath: string, expected: EvalItem[], rank: Map<string, number>, meta: RunMeta): boolean {
  const shard = opts.shard!;
  const merged = withLock(`${finalPath}.merge.lock`, () => {
    const files = Array.from({ length: shard.count }, (_, index) => shardPath(finalPath, { index, count: shard.count }));
    const absent = files.filter((f) => !fs.existsSync(f));
    if (absent.length) {
      opts.logger.info({ waiting_for: absent.length }, 'shard done; the last shard to finish merges');
      return false;
    }
    const { shard: _s, shard_expected: _e, ...finalMeta } = meta;
    const union = new ResultStore(finalPath, rank, (items) => resultFileSummary(finalMeta, items, true, opts.scoring));
    for (const f of files) union.absorb(readResultItems(f).items); // shards first: they may hold retried errors
    union.absorb(readIfExists(finalPath));
    const lacking = expected.filter((e) => !union.has(e.id));
    if (lacking.length) {
      opts.logger.warn({ missing: lacking.length, expected: expected.length }, 'shard files do not cover the expected items yet; not merged');
      return false;
    }
    union.flush();
    for (const f of files) fs.rmSync(f, { force: true });
    opts.logger.info({ file: finalPath, items: union.size, expected: expected.length }, 'shards merged');
    return true;
  });
  return merged ?? false;
}
