// The yargs command modules: `vreflect eval` with a fake generator factory (the engine seam) writes results
// and summary.md / summary.json; `vreflect eval score` is its subcommand; bad flags give one-line errors.
import './helpers/mock-hyparquet';

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import yargs from 'yargs';

import { defaultRunName, evalCommand, makeEvalCommand, parseSteps } from '../../../src/cli/commands/eval';
import type { EvalGenerateRequest, GeneratorSpec } from '../../../src/eval/generator';
import { setLogLevel } from '../../../src/util/log';

const DATA = path.join(__dirname, '..', '..', 'fixtures', 'eval', 'data');
const MODEL = fs.mkdtempSync(path.join(os.tmpdir(), 'V-Reflection-7B-'));

let stdout = '';
const realWrite = process.stdout.write;
beforeAll(() => setLogLevel('silent'));
beforeEach(() => {
  stdout = '';
  process.stdout.write = ((s: string) => ((stdout += s), true)) as typeof process.stdout.write;
});
afterEach(() => {
  process.stdout.write = realWrite;
});

const specs: GeneratorSpec[] = [];
const requests: EvalGenerateRequest[] = [];
const fake = makeEvalCommand(async (spec) => {
  specs.push(spec);
  return { generate: async (req) => (requests.push(req), { text: '<answer> A </answer><|im_end|>' }) };
});

function run(cmd: typeof fake, argv: string[]) {
  return yargs(argv)
    .command(cmd as any)
    .strict()
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();
}

test('eval runs every benchmark and step, then writes summary.md and summary.json', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'eval-cli-'));
  await run(fake, ['eval', '--model', MODEL, '--data-root', DATA, '--output-dir', out, '--steps', '0,8', '--limit', '3', '--device', 'cpu']);
  expect(specs).toEqual([{ model: MODEL, baseModel: false, device: 'cpu', dtype: 'auto', threads: undefined, prefillChunk: 0 }]);
  const runName = path.basename(MODEL);
  expect(fs.existsSync(path.join(out, 'HRBench8K', 'decoding_by_steps', runName, 'step0.json'))).toBe(true);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  expect(Object.keys(summary)).toEqual(['BLINK', 'MMVP', 'VSTAR', 'HRBench4K', 'HRBench8K', 'MME-RealWorld-Lite']);
  expect(Object.keys(summary.BLINK)).toEqual(['step0', 'step8']);
  // MMVP, first 3: labels A B A, answered A; id 3's partner is beyond the limit -> 1 complete pair, wrong
  expect(summary.MMVP.step8).toMatchObject({ n: 3, errors: 0, official: { pairs: { complete: 1, correct: 0, incomplete: 1 } } });
  expect(summary.MMVP.step8.accuracy_upstream).toBeCloseTo(200 / 3, 10);
  const md = fs.readFileSync(path.join(out, 'summary.md'), 'utf8');
  expect(md).toContain('| MMVP | step8 | 3 | 0 | 66.67 | 0.00 | pair accuracy | pairs 0/1, 1 incomplete |');
  expect(stdout).toBe(md);
});

test('--processor-min/max-pixels reach every request and are recorded in the run config', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'eval-cli-'));
  requests.length = 0;
  await run(fake, ['eval', '--model', MODEL, '--data-root', DATA, '--output-dir', out, '--benchmarks', 'vstar,mmvp', '--limit', '2', '--processor-max-pixels', '12845056']);
  expect(requests.length).toBe(4);
  expect(requests.every((r) => r.processorMaxPixels === 12845056 && r.processorMinPixels === undefined)).toBe(true);
  const stored = JSON.parse(fs.readFileSync(path.join(out, 'MMVP', 'decoding_by_steps', path.basename(MODEL), 'step8.json'), 'utf8'));
  const config = JSON.stringify(stored);
  expect(config).toContain('"processor_max_pixels":12845056');
  expect(config).not.toContain('processor_min_pixels');
});

test('--hrbench-rule picks the VLMEvalKit revision of HR-Bench\'s official extraction, in eval and in eval score', async () => {
  // "<letter> is my final choice": latest's position test refuses a letter that far from the end (the judge: strict
  // stands in and reads nothing), legacy takes it
  const answers = makeEvalCommand(async () => ({ generate: async () => ({ text: 'A is my final choice' }) }));
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'eval-cli-'));
  await run(answers, ['eval', '--model', MODEL, '--data-root', DATA, '--output-dir', out, '--benchmarks', 'hrbench4k', '--limit', '4', '--hrbench-rule', 'legacy']);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')).HRBench4K.step8;
  const file = path.join(out, 'HRBench4K', 'decoding_by_steps', path.basename(MODEL), 'step8.json');
  const items = (JSON.parse(fs.readFileSync(file, 'utf8')) as { label?: string; correct?: { official: boolean } }[]).filter((i) => i.label);
  const labelA = items.filter((i) => i.label === 'A').length;
  expect(labelA).toBeGreaterThan(0);
  expect(labelA).toBeLessThan(items.length);
  expect(summary.official).toMatchObject({ extraction: 'vlmevalkit-legacy', judge: { undecided: 0 } });
  expect(items.every((i) => i.correct!.official === (i.label === 'A'))).toBe(true);
  expect(fs.readFileSync(path.join(out, 'summary.md'), 'utf8')).toContain('- HRBench4K: `vlmevalkit-legacy`: VLMEvalKit can_infer before its 2025-07 change');

  stdout = '';
  await run(evalCommand, ['eval', 'score', out, '--json']);
  const latest = JSON.parse(stdout).HRBench4K.step8;
  expect(latest.official).toMatchObject({ extraction: 'vlmevalkit', judge: { undecided: items.length, stand_in: items.length } });
  expect(latest.official.cycles).not.toEqual(summary.official.cycles);
  stdout = '';
  await run(evalCommand, ['eval', 'score', out, '--json', '--hrbench-rule', 'legacy']);
  expect(JSON.parse(stdout).HRBench4K.step8).toEqual(summary);
});

test('eval score is a subcommand of eval', async () => {
  const upstream = path.join(__dirname, '..', '..', 'fixtures', 'eval', 'upstream-results', 'evaluation', 'results');
  await run(evalCommand, ['eval', 'score', upstream, '--json']);
  expect(JSON.parse(stdout).HRBench4K.step4.accuracy_official).toBeNull();
});

test('without a wired engine, eval says so when it needs to generate', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'eval-cli-'));
  await expect(run(evalCommand, ['eval', '--model', MODEL, '--data-root', DATA, '--output-dir', out, '--benchmarks', 'vstar'])).rejects.toThrow(
    'no generation engine is wired',
  );
});

test.each([
  [['--data-root', DATA], '--model is required'],
  [['--model', MODEL], '--data-root is required'],
  [['--model', MODEL, '--data-root', DATA, '--steps', '8,x'], '--steps: x is not an integer >= 0'],
  [['--model', MODEL, '--data-root', DATA, '--shard', '2/2'], '--shard 2/2: need 0 <= i < n'],
  [['--model', MODEL, '--data-root', DATA, '--benchmarks', 'POPE'], 'unknown benchmark POPE'],
  [['--model', MODEL, '--data-root', DATA, '--blink-subtasks', 'Counting,Nope'], '--blink-subtasks: unknown subtask Nope'],
  [['--model', MODEL, '--data-root', DATA, '--hrbench8k-max-pixels', '10'], '--hrbench8k-min/max-pixels: need integers with 1 <= min <= max'],
  [['--model', '/no/such/model', '--data-root', DATA], 'model folder not found: /no/such/model'],
  [['--model', MODEL, '--data-root', DATA, '--hrbench-rule', '2024'], '--hrbench-rule must be one of latest, legacy, got 2024'],
  [['--model', MODEL, '--data-root', DATA, '--judge', 'gpt'], '--judge must be one of strict, none, got gpt'],
  [['--model', MODEL, '--data-root', DATA, '--processor-max-pixels', '500'], '--processor-max-pixels must be an integer >= 784 (one 28x28 patch), got 500'],
  [['--model', MODEL, '--data-root', DATA, '--processor-min-pixels', '9000', '--processor-max-pixels', '8000'], '--processor-min-pixels 9000 is above --processor-max-pixels 8000'],
])('bad flags: %j', async (flags, message) => {
  // (a coerce error is thrown while parsing, before parseAsync returns its promise)
  await expect(Promise.resolve().then(() => run(fake, ['eval', ...flags]))).rejects.toThrow(message);
});

test('helpers: run names and step lists', () => {
  expect(defaultRunName('/ckpt/V-Reflection-7B')).toBe('V-Reflection-7B');
  expect(defaultRunName('/result/stage2/run_x/checkpoint-1500')).toBe('run_x-checkpoint-1500');
  expect(parseSteps('4,8,16,32,8')).toEqual([4, 8, 16, 32]);
  expect(parseSteps('0')).toEqual([0]);
});
