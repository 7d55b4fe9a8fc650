// `eval score` on upstream-style files (test/fixtures/eval/upstream-results, written by hand): file-name
// mapping, benchmark from folders, summaries never trusted, the --json shape, and the collision error.
import * as path from 'path';
import yargs from 'yargs';

import { evalScoreCommand } from '../../../src/cli/commands/eval-score';
import { toJson } from '../../../src/eval/report';
import { benchmarkOfPath, findResultFiles, runKeyFromFileName, scorePath } from '../../../src/eval/score';

const ROOT = path.join(__dirname, '..', '..', 'fixtures', 'eval', 'upstream-results');
const RESULTS = path.join(ROOT, 'evaluation', 'results');

test('file names map to run keys', () => {
  expect(runKeyFromFileName('step8.json')).toBe('step8');
  expect(runKeyFromFileName('ck-1500-step8.json')).toBe('step8');
  expect(runKeyFromFileName('steps008.json')).toBe('step8');
  expect(runKeyFromFileName('steps000.json')).toBe('step0');
  expect(runKeyFromFileName('baseline.json')).toBe('baseline');
  expect(runKeyFromFileName('summary.json')).toBeUndefined();
  expect(runKeyFromFileName('ck-1500-step8_process1.json')).toBeUndefined();
});

test('benchmark from the folder above decoding_by_*', () => {
  expect(benchmarkOfPath('/x/blink/decoding_by_steps/run/step8.json')).toBe('BLINK');
  expect(benchmarkOfPath('/x/HRBench8K/decoding_by_baseline/m/baseline.json')).toBe('HRBench8K');
  expect(benchmarkOfPath('/x/MME-RealWorld-Lite/whatever/step8.json')).toBe('MME-RealWorld-Lite');
  expect(benchmarkOfPath('/x/y/step8.json')).toBeUndefined();
});

test('recomputes from items only (the summaries in these files are deliberately wrong)', () => {
  const { table, warnings } = scorePath(RESULTS);
  const json = toJson(table) as any;
  expect(Object.keys(json)).toEqual(['BLINK', 'MMVP', 'VSTAR', 'HRBench4K', 'MME-RealWorld-Lite']);
  // BLINK: upstream 1/3 (the "e" of "The" scores E); official macro: Counting 2/2, Jigsaw 0/1
  expect(json.BLINK.step8).toMatchObject({ n: 3, errors: 0 });
  expect(json.BLINK.step8.accuracy_upstream).toBeCloseTo(100 / 3, 10);
  expect(json.BLINK.step8.accuracy_official).toBeCloseTo(50, 10);
  // MMVP (steps008.json, no category): 3/4 per question; pairs (1,2) right, (3,4) wrong
  expect(json.MMVP.step8.accuracy_upstream).toBeCloseTo(75, 10);
  expect(json.MMVP.step8.accuracy_official).toBeCloseTo(50, 10);
  // HR-Bench without cycle_category: official null
  expect(json.HRBench4K.step4).toMatchObject({ n: 2, accuracy_upstream: 50, accuracy_official: null });
  // MME: upstream only over perception/reasoning prefixes (1/2); official over all three (2/3)
  expect(json['MME-RealWorld-Lite'].step8.n).toBe(3);
  expect(json['MME-RealWorld-Lite'].step8.accuracy_upstream).toBeCloseTo(50, 10);
  expect(json['MME-RealWorld-Lite'].step8.accuracy_official).toBeCloseTo(200 / 3, 10);
  // baseline.json under decoding_by_baseline
  expect(json.VSTAR.baseline).toMatchObject({ n: 2, accuracy_upstream: 50, accuracy_official: 50 });
  expect(warnings.join('\n')).toMatch(/unmerged shard file left out: .*_process1\.json/);
});

test('two files for one benchmark and run are an error naming both', () => {
  const dir = path.join(ROOT, 'collide');
  expect(() => findResultFiles(dir)).toThrow(
    `two result files for BLINK step8: ${path.join(dir, 'blink', 'decoding_by_steps', 'a', 'ck-1500-step8.json')} and ${path.join(dir, 'blink', 'decoding_by_steps', 'a', 'steps008.json')}`,
  );
});

describe('the command module', () => {
  let out = '';
  const write = process.stdout.write;
  beforeEach(() => {
    out = '';
    process.stdout.write = ((s: string) => ((out += s), true)) as any;
  });
  afterEach(() => {
    process.stdout.write = write;
  });
  const run = (argv: string[]) => yargs(argv).command(evalScoreCommand as any).strict().exitProcess(false).fail((m, e) => { throw e ?? new Error(m); }).parseAsync();

  test('--json prints { Benchmark: { run: { n, accuracy_upstream, accuracy_official, errors, ... } } }', async () => {
    await run(['score', RESULTS, '--json']);
    const json = JSON.parse(out);
    expect(Object.keys(json.MMVP.step8).slice(0, 4)).toEqual(['n', 'accuracy_upstream', 'accuracy_official', 'errors']);
  });

  test('one file whose folders do not tell the benchmark, with --benchmark', async () => {
    const file = path.join(ROOT, 'collide', 'blink', 'decoding_by_steps', 'a', 'steps008.json');
    await run(['score', file, '--benchmark', 'mmvp', '--json']);
    expect(Object.keys(JSON.parse(out))).toEqual(['MMVP']);
  });

  test('markdown by default; an empty folder is a one-line error', async () => {
    await run(['score', RESULTS]);
    expect(out).toMatch(/\| BLINK \| step8 \| 3 \(of 697\) \| 0 \| 33\.33 \| 50\.00 \|/);
    await expect(run(['score', path.join(ROOT, 'evaluation')  + '/nonexistent'])).rejects.toThrow('no such file or folder');
  });
});
