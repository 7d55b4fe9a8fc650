// `eval score PATH`: finds result files (ours or upstream's) under PATH, maps each to (benchmark, run key)
// and recomputes every metric from the items. File names: step<S>.json, upstream's ck-<N>-step<S>.json and
// steps<SSS>.json all become run `step<S>`; baseline.json becomes `baseline`. BLINK's published saved outputs
// (<Model>/<Subtask>.json, blink-saved.ts) become one BLINK run named after the <Model> folder.
import * as fs from 'fs';
import * as path from 'path';

import { BENCHMARKS, benchmarkFromName } from './benchmarks';
import {
  BlinkSavedRun,
  applyBlinkAnswers,
  blinkSavedSubtask,
  findBlinkAnswers,
  isBlinkPredictionMap,
  isBlinkSavedOutput,
  readBlinkAnswers,
  readBlinkPredictionMap,
  readBlinkSavedOutputs,
} from './blink-saved';
import { ScoreOptions, scoreRun } from './metrics';
import type { ScoreTable } from './report';
import { readResultItems } from './results';
import type { BenchmarkKey, ScorableItem } from './types';

export interface FoundFile {
  /** the result file, or the folder of a BLINK saved-output run */
  file: string;
  bench: BenchmarkKey;
  run: string;
  /** BLINK saved outputs: the subtask files of the run */
  blinkSaved?: string[];
  /** a BLINK prediction map ({idx: "(X)"}, evaluate.py's input) */
  blinkPredictions?: boolean;
}

export interface ScorePathOptions extends ScoreOptions {
  /** BLINK's val_answers.json for saved outputs and prediction maps (default: one found beside or above them) */
  blinkAnswers?: string;
}

/** Run key from a result file name; undefined for files that are not results. */
export function runKeyFromFileName(name: string): string | undefined {
  let m = /^step(\d+)\.json$/.exec(name);
  if (m) return `step${Number(m[1])}`;
  m = /^ck-\d+-step(\d+)\.json$/.exec(name);
  if (m) return `step${Number(m[1])}`;
  m = /^steps(\d+)\.json$/.exec(name);
  if (m) return `step${Number(m[1])}`;
  if (name === 'baseline.json') return 'baseline';
  return undefined;
}

/**
 * The benchmark a file belongs to: the folder right above decoding_by_steps / decoding_by_baseline, else the
 * nearest ancestor folder with a benchmark's name.
 */
export function benchmarkOfPath(file: string): BenchmarkKey | undefined {
  const parts = path.resolve(file).split(path.sep);
  const k = parts.findIndex((p) => p === 'decoding_by_steps' || p === 'decoding_by_baseline');
  if (k > 0) {
    const key = benchmarkFromName(parts[k - 1]);
    if (key) return key;
  }
  for (let i = parts.length - 2; i >= 0; i--) {
    const key = benchmarkFromName(parts[i]);
    if (key) return key;
  }
  return undefined;
}

function walk(dir: string, out: string[]): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(p, out);
    else if (entry.isFile()) out.push(p);
  }
}

export interface FindResult {
  files: FoundFile[];
  warnings: string[];
}

/** One (benchmark, run) per result set: two are an error naming both. */
function requireUniqueRuns(files: FoundFile[]): void {
  const seen = new Map<string, string>();
  for (const f of files) {
    const key = `${f.bench}\u0000${f.run}`;
    const other = seen.get(key);
    if (other) throw new Error(`two result files for ${f.bench} ${f.run}: ${other} and ${f.file}; score them separately`);
    seen.set(key, f.file);
  }
}

/**
 * Run keys come from file names (step8, baseline). When one benchmark's files lie in several run folders (ours:
 * <run-name>/, upstream's: one folder per checkpoint), every run of that benchmark is named `<run folder>/<key>`:
 * a whole results tree then scores as one table, and a row says which model it is. One folder per benchmark keeps
 * the plain keys. Two files left with one name (one folder holding ck-1500-step8.json and steps008.json) are an
 * error naming both.
 */
function qualifyCollidingRuns(found: FoundFile[]): FoundFile[] {
  const folders = new Map<BenchmarkKey, Set<string>>();
  for (const f of found) (folders.get(f.bench) ?? folders.set(f.bench, new Set()).get(f.bench)!).add(path.dirname(f.file));
  const crowded = new Set([...folders].filter(([, dirs]) => dirs.size > 1).map(([bench]) => bench));
  const out = found.map((f) => (crowded.has(f.bench) ? { ...f, run: `${path.basename(path.dirname(f.file))}/${f.run}` } : f));
  return out;
}

/** Result files under root (a folder or one file); two files for one (benchmark, run) are an error naming both. */
export function findResultFiles(root: string, benchOverride?: BenchmarkKey): FindResult {
  if (!fs.existsSync(root)) throw new Error(`no such file or folder: ${root}`);
  const warnings: string[] = [];
  const candidates: string[] = [];
  if (fs.statSync(root).isDirectory()) walk(root, candidates);
  else candidates.push(root);
  const files: FoundFile[] = [];
  const blinkSaved = new Map<string, string[]>(); // folder -> subtask files
  const runFiles: FoundFile[] = [];
  for (const file of candidates.sort()) {
    const name = path.basename(file);
    if (/\.shard-\d+-of-\d+\.json$/.test(name) || /_process\d+\.json$/.test(name)) {
      warnings.push(`unmerged shard file left out: ${file}`);
      continue;
    }
    const run = runKeyFromFileName(name);
    if (!run) {
      if (isBlinkSavedOutput(file)) {
        const dir = path.dirname(file);
        blinkSaved.set(dir, [...(blinkSaved.get(dir) ?? []), file]);
        continue;
      }
      if (blinkSavedSubtask(file)) {
        warnings.push(`${file} is named like a BLINK saved-output file but is not one (unreadable JSON, or no "val" list); left out`);
        continue;
      }
      if (isBlinkPredictionMap(file)) {
        files.push({ file, bench: 'BLINK', run: path.basename(file, '.json'), blinkPredictions: true });
        continue;
      }
      if (candidates.length === 1)
        throw new Error(
          `${file}: not a result file name (step<S>.json, ck-<N>-step<S>.json, steps<SSS>.json, baseline.json), a BLINK saved-output file (<Subtask>.json with a "val" list) nor a BLINK prediction file ({"val_<Subtask>_<k>": "(X)"})`,
        );
      continue;
    }
    const bench = benchOverride ?? benchmarkOfPath(file);
    if (!bench) {
      warnings.push(`cannot tell the benchmark of ${file} (no folder named like ${Object.values(BENCHMARKS).map((b) => b.outDir).join(', ')}); left out`);
      continue;
    }
    runFiles.push({ file, bench, run });
  }
  files.push(...qualifyCollidingRuns(runFiles));
  for (const [dir, parts] of blinkSaved) files.push({ file: dir, bench: 'BLINK', run: path.basename(path.resolve(dir)), blinkSaved: parts });
  requireUniqueRuns(files);
  return { files, warnings };
}

export interface ScoreOutput {
  table: ScoreTable;
  warnings: string[];
}

/** Scores every result file under root. */
export function scorePath(root: string, benchOverride?: BenchmarkKey, opts: ScorePathOptions = {}): ScoreOutput {
  const { files, warnings } = findResultFiles(root, benchOverride);
  const table: ScoreTable = {};
  const answersCache = new Map<string, Map<string, string>>();
  const answersFor = (f: FoundFile): string | undefined => {
    const file = opts.blinkAnswers ?? findBlinkAnswers(f.blinkSaved ? f.blinkSaved[0] : f.file);
    if (file && !answersCache.has(file)) answersCache.set(file, readBlinkAnswers(file));
    return file;
  };
  for (const f of files) {
    if (f.blinkSaved || f.blinkPredictions) {
      const answers = answersFor(f);
      if (f.blinkPredictions && !answers) throw new Error(`${f.file} is a BLINK prediction file: its gold answers come from val_answers.json (none beside or above it; give --blink-answers FILE)`);
      const run: BlinkSavedRun = f.blinkSaved ? readBlinkSavedOutputs(f.blinkSaved) : readBlinkPredictionMap(f.file);
      const label = `BLINK ${f.run}`;
      if (run.hiddenTest) warnings.push(`${label}: ${run.hiddenTest} test-split items left out (answers hidden; scored on EvalAI)`);
      if (answers) for (const w of applyBlinkAnswers(run, answersCache.get(answers)!, answers)) warnings.push(`${label}: ${w}`);
      const score = scoreRun('BLINK', run.items, opts);
      (table.BLINK ??= {})[f.run] = { ...score, file: answers ? `${f.file} (gold: ${answers})` : f.file, expected_total: run.items.length };
      continue;
    }
    const { summary, items } = readResultItems(f.file);
    const score = scoreRun(f.bench, items as ScorableItem[], opts);
    // only for the 'n (of N)' display: our files record the intended total (e.g. after --limit or a full BLINK)
    const recorded = summary?.expected_total;
    const expected_total = typeof recorded === 'number' ? recorded : BENCHMARKS[f.bench].expectedTotal;
    (table[f.bench] ??= {})[f.run] = { ...score, file: f.file, expected_total };
  }
  return { table, warnings };
}
