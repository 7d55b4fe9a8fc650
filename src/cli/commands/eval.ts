// vreflect eval: the six V-Reflection benchmarks in their published formats, one run per latent quota
// (--steps) or the base model (--base-model), resumable, shardable; upstream and official scores side by side.
//
// Wiring: eval needs a generator (src/eval/generator.ts). The CLI registers makeEvalCommand(factory) with
// the engine's factory; `evalCommand` below is the same command without an engine (it says so when a
// question needs generating, but `eval score` and fully finished re-runs work).
import * as fs from 'fs';
import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';

import { BLINK_ALL_SUBTASKS } from '../../eval/benchmarks/blink';
import { parseBenchmarkList } from '../../eval/benchmarks';
import { EVAL_MAX_PIXELS, EVAL_MIN_PIXELS } from '../../eval/benchmarks/common';
import type { GeneratorFactory } from '../../eval/generator';
import type { ScoreOptions } from '../../eval/metrics';
import type { HRBenchRule, JudgePolicy } from '../../eval/official';
import { ScoreTable, writeSummaries } from '../../eval/report';
import { parseShard } from '../../eval/results';
import { evalDevicePreflight } from '../../plan/device_runs';
import { DEVICE_OPTION } from '../../plan/preflight';
import { EvalOptions, PixelLimits, runEval } from '../../eval/runner';
import { scorePath } from '../../eval/score';
import { BENCHMARK_KEYS, BenchmarkKey } from '../../eval/types';
import { UserError } from '../../util/errors';
import { log } from '../../util/log';
import { startProgress } from '../../util/progress';
import { requireIntArg } from '../int_arg';
import { HRBENCH_RULE_OPTION, JUDGE_OPTION, evalScoreCommand } from './eval-score';

export interface EvalArgs {
  model?: string;
  'data-root'?: string;
  'output-dir': string;
  benchmarks: string;
  steps: string;
  'base-model': boolean;
  'run-name'?: string;
  limit?: number;
  shard?: string;
  'retry-errors': boolean;
  'max-new-tokens': number;
  'single-resize': boolean;
  'processor-min-pixels'?: number;
  'processor-max-pixels'?: number;
  'hrbench4k-min-pixels': number;
  'hrbench4k-max-pixels': number;
  'hrbench8k-min-pixels': number;
  'hrbench8k-max-pixels': number;
  'blink-subtasks': string;
  'blink-prompt': 'upstream' | 'official';
  'mmvp-fix-pairs': boolean;
  judge: JudgePolicy;
  'hrbench-rule': HRBenchRule;
  device: 'cpu' | 'cuda' | 'auto';
  dtype: 'auto' | 'fp32' | 'bf16';
  threads?: number;
  'prefill-chunk': number;
}

/** The run folder: the model folder's name; for a checkpoint-N folder, "<parent>-checkpoint-N". */
export function defaultRunName(model: string): string {
  const abs = path.resolve(model);
  const base = path.basename(abs);
  return /^checkpoint-\d+$/.test(base) ? `${path.basename(path.dirname(abs))}-${base}` : base;
}

export function parseSteps(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const n = Number(part);
    if (!Number.isInteger(n) || n < 0) throw new UserError(`--steps: ${part} is not an integer >= 0`);
    if (!out.includes(n)) out.push(n);
  }
  if (out.length === 0) throw new UserError('--steps names no step count');
  return out;
}

function pixelLimits(min: number, max: number, flag: string): PixelLimits {
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max < min) throw new UserError(`${flag}: need integers with 1 <= min <= max`);
  return { min, max };
}

/** --processor-min/max-pixels: each optional; both at least one 28x28 patch, and min <= max when both are given. */
function processorPixelLimits(min: number | undefined, max: number | undefined): { min?: number; max?: number } | undefined {
  if (min === undefined && max === undefined) return undefined;
  for (const [flag, v] of [['--processor-min-pixels', min], ['--processor-max-pixels', max]] as const)
    if (v !== undefined && (!Number.isInteger(v) || v < 28 * 28)) throw new UserError(`${flag} must be an integer >= 784 (one 28x28 patch), got ${v}`);
  if (min !== undefined && max !== undefined && min > max) throw new UserError(`--processor-min-pixels ${min} is above --processor-max-pixels ${max}`);
  return { ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) };
}

function builder(y: Argv): Argv<EvalArgs> {
  return y
    .command(evalScoreCommand as CommandModule<object, any>)
    .option('model', { type: 'string', describe: 'checkpoint folder (V-Reflection, or Qwen2.5-VL with --base-model)' })
    .option('data-root', { type: 'string', describe: 'folder holding BLINK/, MMVP/, vstar_bench/, HR-Bench/, MME-RealWorld-Lite/ as huggingface-cli leaves them' })
    .option('output-dir', { type: 'string', default: 'results', describe: 'results root (<Bench>/decoding_by_steps/<run-name>/step<S>.json, summary.md, summary.json)' })
    .option('benchmarks', { type: 'string', default: BENCHMARK_KEYS.join(','), describe: 'comma list, case-insensitive' })
    .option('steps', { type: 'string', default: '8', describe: 'latent steps per <|lvr_start|>, one run each (e.g. 4,8,16,32; 0 = plain decoding with this model)' })
    .option('base-model', { type: 'boolean', default: false, describe: 'plain Qwen2.5-VL decoding; run key "baseline" (ignores --steps)' })
    .option('run-name', { type: 'string', describe: 'results sub-folder (default: the model folder name)' })
    .option('limit', { type: 'number', describe: 'first N questions of each benchmark, in upstream order (a larger N later extends the run)' })
    .option('shard', { type: 'string', describe: 'i/n: this process takes the i-th of n contiguous slices (0-based); the last to finish merges' })
    .option('retry-errors', { type: 'boolean', default: false, describe: 'generate error items again instead of keeping them' })
    .option('max-new-tokens', { type: 'number', default: 512 })
    .option('single-resize', { type: 'boolean', default: false, describe: 'resize only with the processor\'s limits, as infer does (upstream resizes with qwen-vl-utils first)' })
    .option('processor-min-pixels', { type: 'number', describe: "second resize: override the checkpoint's preprocessor_config.json min_pixels" })
    .option('processor-max-pixels', { type: 'number', describe: "second resize: override the checkpoint's max_pixels (V-Reflection checkpoints carry the training limit 4014080; upstream keeps it)" })
    .option('hrbench4k-min-pixels', { type: 'number', default: EVAL_MIN_PIXELS, describe: 'upstream EVAL_HRBENCH4K_MIN_PIXELS' })
    .option('hrbench4k-max-pixels', { type: 'number', default: EVAL_MAX_PIXELS, describe: 'upstream EVAL_HRBENCH4K_MAX_PIXELS' })
    .option('hrbench8k-min-pixels', { type: 'number', default: EVAL_MIN_PIXELS, describe: 'upstream EVAL_HRBENCH8K_MIN_PIXELS' })
    .option('hrbench8k-max-pixels', { type: 'number', default: EVAL_MAX_PIXELS, describe: 'upstream EVAL_HRBENCH8K_MAX_PIXELS' })
    .option('blink-subtasks', { type: 'string', default: 'upstream', describe: `upstream (5 subtasks of val, 697 questions), all (14, 1901), or a comma list of ${BLINK_ALL_SUBTASKS.join(', ')}` })
    .option('blink-prompt', { choices: ['upstream', 'official'] as const, default: 'upstream' as const, describe: "BLINK's user text: upstream's (question, Options: A. .., instruction) or BLINK's own `prompt` field (+ its disclaimer for Art_Style, Forensic_Detection, Jigsaw), as test_benchmark.py sends it" })
    .option('mmvp-fix-pairs', { type: 'boolean', default: false, describe: 'use the corrected MMVP answers of pairs 99/100 and 279/280 (upstream uses the original CSV)' })
    .option('judge', JUDGE_OPTION)
    .option('hrbench-rule', HRBENCH_RULE_OPTION)
    .option('device', DEVICE_OPTION)
    .option('dtype', { choices: ['auto', 'fp32', 'bf16'] as const, default: 'auto' as const })
    .option('threads', { type: 'number', describe: 'CPU threads' })
    .option('prefill-chunk', { type: 'number', default: 0, describe: 'prompt tokens per decoder forward (chunked prefill); 0: whole prompt, on cuda unless the free GPU memory needs chunks' })
    .example('$0 eval --model ./V-Reflection-7B --data-root data --steps 4,8,16,32 --output-dir results', '')
    .example('$0 eval --model ./Qwen2.5-VL-7B-Instruct --data-root data --base-model --output-dir results', '')
    .example('$0 eval score results --json', '') as unknown as Argv<EvalArgs>;
}

/** Checks the flags and turns them into runner options (everything except the generator and the UI). */
export function evalOptionsFromArgs(args: EvalArgs): Omit<EvalOptions, 'getGenerator' | 'logger' | 'progress'> {
  if (!args.model) throw new UserError('--model is required');
  if (!args['data-root']) throw new UserError('--data-root is required');
  if (!fs.existsSync(args.model)) throw new UserError(`model folder not found: ${args.model}`);
  if (!fs.existsSync(args['data-root'])) throw new UserError(`data root not found: ${args['data-root']}`);
  if (args.limit !== undefined && (!Number.isInteger(args.limit) || args.limit < 1)) throw new UserError('--limit must be an integer >= 1');
  if (!Number.isInteger(args['max-new-tokens']) || args['max-new-tokens'] < 1) throw new UserError('--max-new-tokens must be an integer >= 1');
  let benchmarks;
  let shard;
  try {
    benchmarks = parseBenchmarkList(args.benchmarks);
    shard = args.shard !== undefined ? parseShard(args.shard) : undefined;
  } catch (err) {
    throw new UserError((err as Error).message);
  }
  const subtasks = args['blink-subtasks'];
  const blinkSubtasks = subtasks === 'upstream' || subtasks === 'all' ? subtasks : subtasks.split(',').map((s) => s.trim()).filter(Boolean);
  if (Array.isArray(blinkSubtasks)) {
    const unknown = blinkSubtasks.filter((s) => !BLINK_ALL_SUBTASKS.includes(s));
    if (unknown.length) throw new UserError(`--blink-subtasks: unknown subtask ${unknown.join(', ')}`);
  }
  const processorPixels = processorPixelLimits(args['processor-min-pixels'], args['processor-max-pixels']);
  return {
    dataRoot: args['data-root'],
    outputDir: args['output-dir'],
    benchmarks,
    steps: args['base-model'] ? [] : parseSteps(args.steps),
    baseModel: args['base-model'],
    runName: args['run-name'] ?? defaultRunName(args.model),
    model: path.resolve(args.model),
    limit: args.limit,
    shard,
    retryErrors: args['retry-errors'],
    maxNewTokens: args['max-new-tokens'],
    singleResize: args['single-resize'],
    ...(processorPixels ? { processorPixels } : {}),
    pixels: {
      HRBench4K: pixelLimits(args['hrbench4k-min-pixels'], args['hrbench4k-max-pixels'], '--hrbench4k-min/max-pixels'),
      HRBench8K: pixelLimits(args['hrbench8k-min-pixels'], args['hrbench8k-max-pixels'], '--hrbench8k-min/max-pixels'),
    },
    benchmarkOptions: { blinkSubtasks, mmvpFixPairs: args['mmvp-fix-pairs'], ...(args['blink-prompt'] === 'official' ? { blinkPrompt: 'official' as const } : {}) },
    scoring: { judge: args.judge, hrbenchRule: args['hrbench-rule'] },
  };
}

/** Scores the whole output dir into summary.md / summary.json (only this run's folder if others collide). */
function summarize(outputDir: string, runName: string, score: ScoreOptions): void {
  let table: ScoreTable;
  try {
    table = scorePath(outputDir, undefined, score).table;
  } catch (err) {
    log().warn({ reason: (err as Error).message }, `summary limited to runs named ${runName}`);
    table = {};
    for (const dir of findRunDirs(outputDir, runName))
      for (const [bench, runs] of Object.entries(scorePath(dir, undefined, score).table) as [BenchmarkKey, ScoreTable[BenchmarkKey]][])
        table[bench] = { ...table[bench], ...runs };
  }
  const files = writeSummaries(outputDir, table);
  log().info(files, 'summaries written');
  process.stdout.write(fs.readFileSync(files.md, 'utf8'));
}

function findRunDirs(outputDir: string, runName: string): string[] {
  const out: string[] = [];
  for (const bench of fs.existsSync(outputDir) ? fs.readdirSync(outputDir) : [])
    for (const kind of ['decoding_by_steps', 'decoding_by_baseline']) {
      const dir = path.join(outputDir, bench, kind, runName);
      if (fs.existsSync(dir)) out.push(dir);
    }
  return out;
}

/** The eval command, generating through `factory` (the engine seam). */
export function makeEvalCommand(factory: GeneratorFactory): CommandModule<object, EvalArgs> {
  return {
    command: 'eval',
    describe: 'evaluate on BLINK, MMVP, V*, HR-Bench 4K/8K, MME-RealWorld-Lite (upstream and official scores); `eval score PATH` rescores files',
    builder,
    handler: async (args) => {
      const opts = evalOptionsFromArgs(args);
      requireIntArg('--prefill-chunk', args['prefill-chunk'], 0);
      const device = evalDevicePreflight({
        device: args.device, model: args.model!, maxPixels: Math.max(...opts.benchmarks.map((b) => opts.pixels?.[b]?.max ?? EVAL_MAX_PIXELS)),
        maxNewTokens: opts.maxNewTokens, latentSteps: Math.max(0, ...opts.steps),
      });
      const outcomes = await runEval({
        ...opts,
        getGenerator: () =>
          factory({ model: args.model!, baseModel: args['base-model'], device, dtype: args.dtype, threads: args.threads, prefillChunk: args['prefill-chunk'] }),
        logger: log(),
        progress: startProgress,
      });
      const pending = outcomes.filter((o) => !o.complete || (opts.shard && !o.merged));
      if (opts.shard && pending.length) log().info({ runs: pending.length }, 'this shard is done; summaries are written after the merge');
      else summarize(opts.outputDir, opts.runName, opts.scoring ?? {});
    },
  };
}

/** Placeholder factory until the engine is wired in (see the header of this file). */
export const noEngineFactory: GeneratorFactory = async () => {
  throw new UserError('vreflect eval: no generation engine is wired into this build (src/cli/commands/eval.ts: makeEvalCommand)');
};

export const evalCommand = makeEvalCommand(noEngineFactory);
