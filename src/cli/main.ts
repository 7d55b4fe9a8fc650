// The vreflect command line: global flags, one module per command (src/cli/commands), one-line errors.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';

import { oneLine } from '../util/errors';
import { log, setLogLevel, LogLevel } from '../util/log';
import { commands } from './commands';

export async function main(argv: string[]): Promise<void> {
  const parser = yargs(hideBin(argv))
    .scriptName('vreflect')
    .usage('$0 <command> [options]\n\nV-Reflection (think-then-look latent visual reasoning) on Qwen2.5-VL.')
    .option('log-level', {
      type: 'string',
      choices: ['trace', 'debug', 'info', 'warn', 'error', 'silent'],
      default: 'info',
      describe: 'log verbosity (logs go to stderr; pretty on a TTY, JSON lines otherwise)',
      global: true,
    })
    .middleware((args) => setLogLevel(args['log-level'] as LogLevel))
    .demandCommand(1, 'name a command (see --help)')
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`vreflect: ${msg}\nRun with --help for usage.\n`);
      process.exit(2);
    });
  for (const c of commands) parser.command(c as any);
  try {
    await parser.parseAsync();
  } catch (err) {
    log().debug({ err }, 'command failed');
    process.stderr.write(`vreflect: error: ${oneLine(err)}\n`);
    process.exitCode = 1;
  }
}
