// vreflect eval score PATH: recompute every metric from result files, ours or upstream's.
import * as fs from 'fs';
import type { CommandModule } from 'yargs';

import { benchmarkFromName } from '../../eval/benchmarks';
import { HRBENCH_RULES, HRBenchRule, JUDGE_POLICIES, JudgePolicy } from '../../eval/official';
import { renderMarkdown, toJson } from '../../eval/report';
import { scorePath } from '../../eval/score';
import { BENCHMARK_KEYS } from '../../eval/types';
import { UserError } from '../../util/errors';
import { log } from '../../util/log';

interface ScoreArgs {
  path: string;
  json: boolean;
  benchmark?: string;
  judge: JudgePolicy;
  'hrbench-rule': HRBenchRule;
  'blink-answers'?: string;
}

/** A string option limited to `values`, checked by coerce (see JUDGE_OPTION) with a one-line error. */
function oneOf<T extends string>(flag: string, values: readonly T[]): (v: string) => T {
  return (v) => {
    if (!(values as readonly string[]).includes(v)) throw new Error(`--${flag} must be one of ${values.join(', ')}, got ${v}`);
    return v as T;
  };
}

/**
 * Shared by `eval` and `eval score` (validated by coerce, not `choices`: `eval score` inherits eval's options,
 * and yargs would list the choices twice).
 */
export const JUDGE_OPTION = {
  type: 'string',
  default: 'strict' as JudgePolicy,
  coerce: oneOf('judge', JUDGE_POLICIES),
  describe:
    'official scoring of items whose official pipeline asks an LLM judge (BLINK: GPT-3.5) and that record no official choice: strict = read them with the strict rule; none = score them wrong. Counted in the report either way [strict|none]',
} as const;

/** Shared by `eval` and `eval score`, like JUDGE_OPTION. */
export const HRBENCH_RULE_OPTION = {
  type: 'string',
  default: 'latest' as HRBenchRule,
  coerce: oneOf('hrbench-rule', HRBENCH_RULES),
  describe:
    "HR-Bench's official extraction: latest = VLMEvalKit's can_infer today (a trailing option letter, 'answer is X', a length limit on option-text matches); legacy = before its 2025-07 change, the rule of 2024 when HR-Bench's leaderboard was made (any single option letter, no length limit) [latest|legacy]",
} as const;

export const evalScoreCommand: CommandModule<object, ScoreArgs> = {
  command: 'score <path>',
  describe: 'recompute upstream and official metrics from result files (ours or upstream\'s); never trusts a file\'s summary',
  builder: (y) =>
    y
      .positional('path', { type: 'string', demandOption: true, describe: 'a results folder (e.g. --output-dir of eval, or upstream evaluation/results) or one result file' })
      .option('json', { type: 'boolean', default: false, describe: 'print { Benchmark: { run: { n, accuracy_upstream, accuracy_official, errors, ... } } }' })
      .option('benchmark', { type: 'string', describe: `benchmark of a file whose folders do not tell (${BENCHMARK_KEYS.join(', ')})` })
      .option('judge', JUDGE_OPTION)
      .option('hrbench-rule', HRBENCH_RULE_OPTION)
      .option('blink-answers', { type: 'string', describe: "BLINK's val_answers.json: the gold for BLINK saved outputs and prediction files ({idx: \"(X)\"}); default: one beside or up to three folders above them" })
      .example('$0 eval score results --json', '')
      .example('$0 eval score upstream/evaluation/results/blink/decoding_by_steps/run/ck-1500-step8.json', '')
      .example('$0 eval score BLINK_Benchmark/eval/saved_outputs/GPT4o', 'BLINK\'s published outputs (one run per model folder)')
      .example('$0 eval score val_predictions/MyModel.json --blink-answers val_answers.json', 'BLINK\'s evaluate.py input'),
  handler: async (args) => {
    if (!fs.existsSync(args.path)) throw new UserError(`no such file or folder: ${args.path}`);
    let bench;
    if (args.benchmark !== undefined) {
      bench = benchmarkFromName(args.benchmark);
      if (!bench) throw new UserError(`unknown benchmark ${args.benchmark} (known: ${BENCHMARK_KEYS.join(', ')})`);
    }
    let out;
    try {
      if (args['blink-answers'] !== undefined && !fs.existsSync(args['blink-answers'])) throw new UserError(`--blink-answers: no such file: ${args['blink-answers']}`);
      out = scorePath(args.path, bench, { judge: args.judge, hrbenchRule: args['hrbench-rule'], blinkAnswers: args['blink-answers'] });
    } catch (err) {
      throw new UserError((err as Error).message);
    }
    for (const w of out.warnings) log().warn(w);
    if (Object.keys(out.table).length === 0) throw new UserError(`no result files found under ${args.path}`);
    process.stdout.write(args.json ? JSON.stringify(toJson(out.table), null, 2) + '\n' : renderMarkdown(out.table, `scores of ${args.path}`));
  },
};
