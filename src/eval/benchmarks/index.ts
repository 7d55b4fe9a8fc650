// The six benchmarks: names, folders (data and results), upstream expected totals, and how to open each.
import type { BenchmarkKey } from '../types';
import { BENCHMARK_KEYS } from '../types';
import { openBlink } from './blink';
import { BenchmarkOptions, OpenBenchmark, markDuplicateIds } from './common';
import { openHrbench } from './hrbench';
import { openMmeRealWorldLite } from './mme-realworld-lite';
import { openMmvp } from './mmvp';
import { openVstar } from './vstar';

export interface BenchmarkInfo {
  key: BenchmarkKey;
  /** folder under --data-root, as huggingface-cli leaves it */
  dataDir: string;
  /** folder under --output-dir (upstream's BenchDir names) */
  outDir: string;
  /** other folder names `eval score` recognises (case-insensitive) */
  aliases: string[];
  /** upstream's item count for the default subset (used to warn about incomplete runs) */
  expectedTotal: number;
  /** the official metric, in words, for summaries */
  officialMetric: string;
}

export const BENCHMARKS: Record<BenchmarkKey, BenchmarkInfo> = {
  BLINK: { key: 'BLINK', dataDir: 'BLINK', outDir: 'blink', aliases: ['blink'], expectedTotal: 697, officialMetric: 'macro mean over subtasks' },
  MMVP: { key: 'MMVP', dataDir: 'MMVP', outDir: 'MMVP', aliases: ['mmvp'], expectedTotal: 300, officialMetric: 'pair accuracy' },
  VSTAR: { key: 'VSTAR', dataDir: 'vstar_bench', outDir: 'vstar_bench', aliases: ['vstar', 'vstar_bench', 'v*', 'vstarbench'], expectedTotal: 191, officialMetric: 'accuracy (overall and by category)' },
  HRBench4K: { key: 'HRBench4K', dataDir: 'HR-Bench', outDir: 'HRBench4K', aliases: ['hrbench4k', 'hr_bench_4k', 'hrbench_4k'], expectedTotal: 800, officialMetric: 'mean over cycle_category groups' },
  HRBench8K: { key: 'HRBench8K', dataDir: 'HR-Bench', outDir: 'HRBench8K', aliases: ['hrbench8k', 'hr_bench_8k', 'hrbench_8k'], expectedTotal: 800, officialMetric: 'mean over cycle_category groups' },
  'MME-RealWorld-Lite': {
    key: 'MME-RealWorld-Lite',
    dataDir: 'MME-RealWorld-Lite',
    outDir: 'MME-RealWorld-Lite',
    aliases: ['mme-realworld-lite', 'mme_realworld_lite', 'mmerealworldlite', 'mme-real-lite'],
    expectedTotal: 1919,
    officialMetric: 'micro accuracy over all items',
  },
};

/** A benchmark key from a user-typed or folder name (case-insensitive); undefined if unknown. */
export function benchmarkFromName(name: string): BenchmarkKey | undefined {
  const n = name.trim().toLowerCase();
  for (const key of BENCHMARK_KEYS) {
    const info = BENCHMARKS[key];
    if (key.toLowerCase() === n || info.outDir.toLowerCase() === n || info.aliases.includes(n)) return key;
  }
  return undefined;
}

/** Parses a --benchmarks list; an unknown name is a one-line error listing the known ones. */
export function parseBenchmarkList(list: string): BenchmarkKey[] {
  const out: BenchmarkKey[] = [];
  for (const part of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const key = benchmarkFromName(part);
    if (!key) throw new Error(`unknown benchmark ${part} (known: ${BENCHMARK_KEYS.join(', ')})`);
    if (!out.includes(key)) out.push(key);
  }
  if (out.length === 0) throw new Error('--benchmarks names no benchmark');
  return out;
}

export async function openBenchmark(key: BenchmarkKey, dataRoot: string, opts: BenchmarkOptions = {}): Promise<OpenBenchmark> {
  let bench: OpenBenchmark;
  switch (key) {
    case 'BLINK':
      bench = await openBlink(dataRoot, opts);
      break;
    case 'MMVP':
      bench = await openMmvp(dataRoot, opts);
      break;
    case 'VSTAR':
      bench = await openVstar(dataRoot);
      break;
    case 'HRBench4K':
    case 'HRBench8K':
      bench = await openHrbench(dataRoot, key);
      break;
    case 'MME-RealWorld-Lite':
      bench = await openMmeRealWorldLite(dataRoot);
      break;
  }
  markDuplicateIds(bench.items);
  return bench;
}
