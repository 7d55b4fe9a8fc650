// `vreflect bench train` flags as yargs parses them (the handler is swapped for a capture so nothing runs):
// --gradient-accumulation-steps / --ga defaults to upstream's 8 and says so in --help, and bad values give the
// one-line UserError naming the flag.
import yargs from 'yargs';

import { BenchTrainArgs, benchTrainCommand, checkBenchTrainArgs } from '../../../src/cli/commands/bench';
import { UserError } from '../../../src/util/errors';

async function parse(argv: string[]): Promise<BenchTrainArgs> {
  let captured: BenchTrainArgs | undefined;
  await yargs(argv)
    .command({ ...benchTrainCommand, handler: (a: BenchTrainArgs) => void (captured = a) } as any)
    .strict()
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();
  return captured!;
}

function errorOf(args: BenchTrainArgs): string {
  try {
    checkBenchTrainArgs(args);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  return 'no error';
}

test('default: 8 micro-batches per optimizer step; --ga and the long name set it', async () => {
  const d = await parse(['train']);
  expect(d['gradient-accumulation-steps']).toBe(8);
  expect(errorOf(d)).toBe('no error');
  expect((await parse(['train', '--ga', '2']))['gradient-accumulation-steps']).toBe(2);
  expect((await parse(['train', '--gradient-accumulation-steps', '1']))['gradient-accumulation-steps']).toBe(1);
});

test('bad values: one line naming the flag', async () => {
  for (const v of ['0', '-3', '1.5', 'many', '5000']) {
    const msg = errorOf(await parse(['train', '--ga', v]));
    expect(msg).toMatch(/^--gradient-accumulation-steps must be an integer in \[1, 1024\], got /);
    expect(msg).not.toMatch(/\n/);
  }
});

test('--help names the default as upstream recipe', async () => {
  const raw = await yargs(['train']).command({ ...benchTrainCommand, handler: () => {} } as any).exitProcess(false).getHelp();
  const help = raw.replace(/\s+/g, ' '); // yargs wraps the descriptions
  expect(help).toMatch(/--gradient-accumulation-steps, --ga/);
  expect(help).toMatch(/upstream's training recipe/);
  expect(help).toMatch(/\[default: 8\]/);
});
