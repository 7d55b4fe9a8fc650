// vreflect eval score PATH: recompute every metric from result files, ours or upstream's.
import * as fs from 'fs';
import type { CommandModule } from 'yargs';

import { benchmarkFromName } from '../../eval/benchmarks';
import { renderMarkdown, toJson } from '../../eval/report';
import { scorePath } from '../../eval/score';
import { BENCHMARK_KEYS } from '../../eval/types';
import { UserError } from '../../util/errors';
import { log } from '../../util/log';

interface ScoreArgs {
  path: string;
  json: boolean;
  benchmark?: string;
}

export const evalScoreCommand: CommandModule<object, ScoreArgs> = {
  command: 'score <path>',
  describe: 'recompute upstream and official metrics from result files (ours or upstream\'s); never trusts a file\'s summary',
  builder: (y) =>
    y
      .positional('path', { type: 'string', demandOption: true, describe: 'a results folder (e.g. --output-dir of eval, or upstream evaluation/results) or one result file' })
      .option('json', { type: 'boolean', default: false, describe: 'print { Benchmark: { run: { n, accuracy_upstream, accuracy_official, errors, ... } } }' })
      .option('benchmark', { type: 'string', describe: `benchmark of a file whose folders do not tell (${BENCHMARK_KEYS.join(', ')})` })
      .example('$0 eval score results --json', '')
      .example('$0 eval score upstream/evaluation/results/blink/decoding_by_steps/run/ck-1500-step8.json', ''),
  handler: async (args) => {
    if (!fs.existsSync(args.path)) throw new UserError(`no such file or folder: ${args.path}`);
    let bench;
    if (args.benchmark !== undefined) {
      bench = benchmarkFromName(args.benchmark);
      if (!bench) throw new UserError(`unknown benchmark ${args.benchmark} (known: ${BENCHMARK_KEYS.join(', ')})`);
    }
    let out;
    try {
      out = scorePath(args.path, bench);
    } catch (err) {
      throw new UserError((err as Error).message);
    }
    for (const w of out.warnings) log().warn(w);
    if (Object.keys(out.table).length === 0) throw new UserError(`no result files found under ${args.path}`);
    process.stdout.write(args.json ? JSON.stringify(toJson(out.table), null, 2) + '\n' : renderMarkdown(out.table, `scores of ${args.path}`));
  },
};
