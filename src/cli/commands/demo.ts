// vreflect demo: the README's first command on a fresh machine. It builds a tiny random model and a synthetic
// grounded-VQA set, runs warm-up, stage 1, stage 2, eval (0 vs 8 latent steps) and infer with an attention
// map on the CPU, and prints what happened (src/demo/run.ts). It shows the pipeline working, not a result.
import type { CommandModule } from 'yargs';

import { formatReport } from '../../demo/report';
import { runDemo } from '../../demo/run';
import { UserError } from '../../util/errors';
import { log, setLogLevel } from '../../util/log';

interface DemoArgs {
  'output-dir': string;
  seed: number;
  quick: boolean;
  threads?: number;
  'log-level'?: string;
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'train and evaluate a tiny V-Reflection model on synthetic pictures, end to end on the CPU (a few minutes)',
  builder: (y) =>
    y
      .option('output-dir', { type: 'string', default: './vreflect-demo', describe: 'everything the demo writes: model, data, checkpoints, results, attention map' })
      .option('seed', { type: 'number', default: 1, describe: 'seeds the model weights, the pictures and the data order' })
      .option('quick', { type: 'boolean', default: false, describe: 'a few steps of each stage (seconds): checks the pipeline, learns nothing' })
      .option('threads', { type: 'number', describe: 'CPU threads (default: all cores)' })
      .example('$0 demo', 'the full demo (about 2 minutes on 2 CPU cores)')
      .example('$0 demo --quick --output-dir /tmp/vr-demo', ''),
  handler: async (args) => {
    if (!Number.isSafeInteger(args.seed) || args.seed < 0) throw new UserError('--seed must be an integer >= 0');
    if (args.threads !== undefined && (!Number.isInteger(args.threads) || args.threads < 1)) throw new UserError('--threads must be an integer >= 1');
    // The training loop logs every step at info level; the demo prints its own progress, so the library logs
    // drop to warnings unless a more detailed level was asked for.
    const level = args['log-level'] ?? 'info';
    if (level === 'info') setLogLevel('warn');
    try {
      const summary = await runDemo({ outputDir: args['output-dir'], seed: args.seed, quick: args.quick, threads: args.threads });
      process.stdout.write(formatReport(summary));
    } finally {
      if (level === 'info') setLogLevel('info');
      log().debug('demo finished');
    }
  },
};
