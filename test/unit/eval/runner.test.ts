// The eval runner end to end on the six fixture benchmarks with a scripted fake generator: result layout
// and item shape, requests sent to the generator, error items, resume after a crash (and after a kill -9
// between write and rename), --limit extension, shards and their merge, --retry-errors, baseline runs.
import './helpers/mock-hyparquet';

import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { EvalGenerateRequest, EvalGenerator, EvalItemError } from '../../../src/eval/generator';
import { readResultItems } from '../../../src/eval/results';
import { EvalOptions, runEval } from '../../../src/eval/runner';
import type { BenchmarkKey, ErrorItem, ResultItem } from '../../../src/eval/types';

const DATA = path.join(__dirname, '..', '..', 'fixtures', 'eval', 'data');
const ALL: BenchmarkKey[] = ['BLINK', 'MMVP', 'VSTAR', 'HRBench4K', 'HRBench8K', 'MME-RealWorld-Lite'];
const TRAINED = (letter: string) => `<|lvr_start|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr_end|>\n<answer> ${letter} </answer><|im_end|>`;

/** Answers every question with `answer(req)`; can crash after `crashAfter` answers, like a dying engine. */
class FakeGenerator implements EvalGenerator {
  calls: EvalGenerateRequest[] = [];
  closed = false;
  constructor(
    private readonly answer: (req: EvalGenerateRequest) => string = () => TRAINED('A'),
    private readonly crashAfter = Infinity,
  ) {}
  async generate(req: EvalGenerateRequest): Promise<{ text: string }> {
    if (this.calls.length >= this.crashAfter) throw new Error('engine crashed');
    this.calls.push(req);
    return { text: this.answer(req) };
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

function options(out: string, gen: FakeGenerator, over: Partial<EvalOptions> = {}): EvalOptions & { factoryCalls: () => number } {
  let calls = 0;
  return {
    dataRoot: DATA,
    outputDir: out,
    benchmarks: ALL,
    steps: [8],
    baseModel: false,
    runName: 'fake-run',
    model: '/models/fake',
    maxNewTokens: 512,
    singleResize: false,
    pixels: { HRBench4K: { min: 100, max: 200000 } },
    getGenerator: async () => (calls++, gen),
    logger: { info: () => {}, warn: () => {} },
    progress: () => ({ update: () => {}, stop: () => {} }),
    ...over,
    factoryCalls: () => calls,
  };
}

const tmpOut = () => fs.mkdtempSync(path.join(os.tmpdir(), 'eval-out-'));
const file = (out: string, dir: string, run = 'step8', kind = 'decoding_by_steps') => path.join(out, dir, kind, 'fake-run', `${run}.json`);
const items = (f: string) => readResultItems(f).items;
const summaryOf = (f: string) => readResultItems(f).summary as Record<string, any>;

describe('a full run over the six fixture benchmarks, steps 0 and 8', () => {
  const out = tmpOut();
  const gen = new FakeGenerator((req) => (req.latentSteps === 0 ? 'The answer is A' : TRAINED('A')));
  const opts = options(out, gen, { steps: [0, 8] });
  let outcomes: Awaited<ReturnType<typeof runEval>>;
  beforeAll(async () => {
    outcomes = await runEval(opts);
  });

  test('one file per benchmark and run, in the contract layout; complete; generator made once and closed', () => {
    for (const dir of ['blink', 'MMVP', 'vstar_bench', 'HRBench4K', 'HRBench8K', 'MME-RealWorld-Lite'])
      for (const run of ['step0', 'step8']) expect(fs.existsSync(file(out, dir, run))).toBe(true);
    expect(outcomes).toHaveLength(12);
    expect(outcomes.every((o) => o.complete)).toBe(true);
    expect(opts.factoryCalls()).toBe(1);
    expect(gen.closed).toBe(true);
  });

  test('requests: prompt, images in order, latent steps, sizing, max tokens', () => {
    // 8 BLINK + 5 MMVP (one corrupt image never reaches the generator) + 3 V* + 4 + 4 HR-Bench + 4 MME, twice
    expect(gen.calls).toHaveLength(2 * (8 + 5 + 3 + 4 + 4 + 4));
    const jigsaw = gen.calls.find((c) => c.prompt.startsWith('Which piece fills the gap?'))!;
    expect(jigsaw.images).toHaveLength(3);
    expect(jigsaw.images.every((i) => Buffer.isBuffer(i))).toBe(true);
    const hr4 = gen.calls.find((c) => c.prompt.startsWith('[4K]'))!;
    expect([hr4.minPixels, hr4.maxPixels]).toEqual([100, 200000]);
    const hr8 = gen.calls.find((c) => c.prompt.startsWith('[8K]'))!;
    expect([hr8.minPixels, hr8.maxPixels]).toEqual([3136, 12845056]);
    expect(new Set(gen.calls.map((c) => c.latentSteps))).toEqual(new Set([0, 8]));
    expect(gen.calls.every((c) => c.maxNewTokens === 512 && c.singleResize === false)).toBe(true);
  });

  test('result items: {id, prediction: [text], label, category, extracted, correct} plus per-benchmark fields', () => {
    const blink = items(file(out, 'blink')) as ResultItem[];
    expect(blink[0]).toEqual({
      id: 'val_Counting_1',
      prediction: [TRAINED('A')],
      label: 'B',
      category: 'Counting',
      options: 4, // BLINK's official rule looks for "(A)".."(D)" only
      extracted: { upstream: 'A', upstream_summary: 'A', upstream_shell: 'A', strict: 'A', official: 'A' },
      correct: { upstream: false, upstream_summary: false, upstream_shell: false, strict: false, official: false },
      // "<answer> A </answer>" holds no "(A)" token: BLINK's pipeline would ask GPT-3.5; the strict rule stands in
      official_settled: 'stand_in',
    });
    expect((items(file(out, 'HRBench4K'))[0] as ResultItem).cycle_category).toBe('cycle_0');
    expect(items(file(out, 'MME-RealWorld-Lite'))[3]).toMatchObject({ task: 'Reasoning', subtask: 'Monitoring', category: 'Monitoring', fine_category: 'calculate' });
  });

  test('the corrupt MMVP image is an error item, counted apart', () => {
    const mmvp = items(file(out, 'MMVP'));
    const bad = mmvp.find((i) => i.id === 4) as ErrorItem;
    expect(bad).toMatchObject({ id: 4, label: 'B', category: 'Unknown' });
    expect(bad.error).toMatch(/^unreadable image: /);
    expect(summaryOf(file(out, 'MMVP'))).toMatchObject({ n: 5, errors: 1, items: 6, complete: true });
  });

  test('file summaries: hand-computed accuracies (everything answered A)', () => {
    // BLINK labels B D A C A B C A: A is right 3 times; subtasks Counting 1/3, IQ 1/2, Jigsaw 0/1, RR 0/1, SR 1/1
    const b = summaryOf(file(out, 'blink'));
    expect(b.accuracy_upstream).toBeCloseTo(37.5, 10);
    expect(b.accuracy_official).toBeCloseTo((100 / 3 + 50 + 0 + 0 + 100) / 5, 10);
    expect(b.official).toMatchObject({ extraction: 'blink', judge: { policy: 'strict', undecided: 8, recorded: 0, stand_in: 8, failed: 0 } });
    // step0 answered "The answer is A": upstream extraction reads the "e" of "The" -> E, right only for the E label
    const m0 = summaryOf(file(out, 'MME-RealWorld-Lite', 'step0'));
    expect(m0.accuracy_by_rule.upstream).toBeCloseTo(25, 10); // the reason/... item, label E
    expect(m0.accuracy_upstream).toBeCloseTo(0, 10); // ...which upstream's summary leaves out
    expect(m0.accuracy_official).toBeCloseTo(25, 10); // strict reads A: right for the first item only
  });

  test('a finished re-run generates nothing and never asks for the model', async () => {
    const again = options(out, new FakeGenerator(), { steps: [0, 8] });
    const res = await runEval(again);
    expect(res.every((o) => o.generated === 0 && o.complete)).toBe(true);
    expect(again.factoryCalls()).toBe(0);
  });
});

describe('resume', () => {
  test('after an engine crash, a re-run computes only the missing items and keeps the finished ones', async () => {
    const out = tmpOut();
    const first = new FakeGenerator(() => TRAINED('B'), 2);
    await expect(runEval(options(out, first, { benchmarks: ['HRBench4K'] }))).rejects.toThrow('engine crashed');
    const f = file(out, 'HRBench4K');
    expect(items(f).map((i) => i.id)).toEqual([0, 1]);
    expect(summaryOf(f).complete).toBe(false);
    const second = new FakeGenerator(() => TRAINED('C'));
    await runEval(options(out, second, { benchmarks: ['HRBench4K'] }));
    expect(second.calls).toHaveLength(2);
    expect(items(f).map((i) => [i.id, (i as ResultItem).prediction[0].includes('> B <') ? 'first' : 'second'])).toEqual([
      [0, 'first'], [1, 'first'], [2, 'second'], [3, 'second'],
    ]);
  });

  test('kill -9 between writing the temp file and the rename: the old file stands, one item is redone', async () => {
    const out = tmpOut();
    await runEval(options(out, new FakeGenerator(), { benchmarks: ['VSTAR'] }));
    const f = file(out, 'vstar_bench');
    const data = JSON.parse(fs.readFileSync(f, 'utf8'));
    fs.writeFileSync(f, JSON.stringify(data.slice(0, -1))); // the last item was in flight
    fs.writeFileSync(`${f}.tmp-99999`, JSON.stringify(data).slice(0, 17)); // a torn temp file
    const gen = new FakeGenerator();
    const [o] = await runEval(options(out, gen, { benchmarks: ['VSTAR'] }));
    expect(gen.calls).toHaveLength(1);
    expect(o).toMatchObject({ alreadyDone: 2, generated: 1, complete: true });
    expect(items(f).map((i) => i.id)).toEqual([0, 1, 115]);
  });

  test('a truncated (hand-edited) result file is a one-line error naming it', async () => {
    const out = tmpOut();
    await runEval(options(out, new FakeGenerator(), { benchmarks: ['VSTAR'] }));
    const f = file(out, 'vstar_bench');
    fs.writeFileSync(f, fs.readFileSync(f, 'utf8').slice(0, 50));
    await expect(runEval(options(out, new FakeGenerator(), { benchmarks: ['VSTAR'] }))).rejects.toThrow(`${f} is not a readable JSON result file`);
  });

  test('--limit takes the first N in loader order; a larger N extends the run', async () => {
    const out = tmpOut();
    const a = new FakeGenerator();
    await runEval(options(out, a, { benchmarks: ['BLINK'], limit: 2 }));
    expect(items(file(out, 'blink')).map((i) => i.id)).toEqual(['val_Counting_1', 'val_Counting_2']);
    expect(summaryOf(file(out, 'blink'))).toMatchObject({ expected_total: 2, complete: true });
    const b = new FakeGenerator();
    await runEval(options(out, b, { benchmarks: ['BLINK'], limit: 5 }));
    expect(b.calls).toHaveLength(3);
    expect(items(file(out, 'blink')).map((i) => i.id)).toEqual(['val_Counting_1', 'val_Counting_2', 'val_Counting_3', 'val_IQ_Test_1', 'val_IQ_Test_2']);
  });
});

describe('shards', () => {
  test('i/n slices run separately; the last to finish merges and checks the expected total', async () => {
    const out = tmpOut();
    const g0 = new FakeGenerator();
    const r0 = await runEval(options(out, g0, { benchmarks: ['BLINK'], shard: { index: 0, count: 3 } }));
    const shard0 = path.join(out, 'blink', 'decoding_by_steps', 'fake-run', 'step8.shard-0-of-3.json');
    expect(items(shard0).map((i) => i.id)).toEqual(['val_Counting_1', 'val_Counting_2']); // 8 div 3 = 2
    expect(r0[0]).toMatchObject({ complete: true, merged: false });
    const g2 = new FakeGenerator();
    const r2 = await runEval(options(out, g2, { benchmarks: ['BLINK'], shard: { index: 2, count: 3 } }));
    expect(g2.calls).toHaveLength(4); // the last slice takes the remainder
    expect(r2[0].merged).toBe(false);
    expect(fs.existsSync(file(out, 'blink'))).toBe(false);
    const r1 = await runEval(options(out, new FakeGenerator(), { benchmarks: ['BLINK'], shard: { index: 1, count: 3 } }));
    expect(r1[0].merged).toBe(true);
    const merged = items(file(out, 'blink'));
    expect(merged).toHaveLength(8);
    expect(merged.map((i) => i.id)[7]).toBe('val_Spatial_Relation_1');
    expect(summaryOf(file(out, 'blink'))).toMatchObject({ expected_total: 8, complete: true, n: 8 });
    expect(fs.readdirSync(path.dirname(shard0)).sort()).toEqual(['step8.json']);
  });

  test('shards run with different --limit do not cover the expected items: no merge', async () => {
    const out = tmpOut();
    await runEval(options(out, new FakeGenerator(), { benchmarks: ['HRBench4K'], shard: { index: 0, count: 2 }, limit: 2 }));
    const [r] = await runEval(options(out, new FakeGenerator(), { benchmarks: ['HRBench4K'], shard: { index: 1, count: 2 } }));
    expect(r.merged).toBe(false);
    expect(fs.existsSync(file(out, 'HRBench4K'))).toBe(false);
  });

  test('a plain re-run folds leftover shard files in and finishes the rest', async () => {
    const out = tmpOut();
    await runEval(options(out, new FakeGenerator(), { benchmarks: ['MME-RealWorld-Lite'], shard: { index: 0, count: 2 } }));
    const gen = new FakeGenerator();
    const [r] = await runEval(options(out, gen, { benchmarks: ['MME-RealWorld-Lite'] }));
    expect(gen.calls).toHaveLength(2);
    expect(r).toMatchObject({ alreadyDone: 2, generated: 2, complete: true });
    expect(fs.readdirSync(path.dirname(file(out, 'MME-RealWorld-Lite')))).toEqual(['step8.json']);
  });
});

describe('errors and other runs', () => {
  test('EvalItemError from the generator makes an error item; the run goes on', async () => {
    const out = tmpOut();
    const gen = new FakeGenerator((req) => {
      if (req.prompt.includes('glove')) throw new EvalItemError('image too large for the context');
      return TRAINED('A');
    });
    const [o] = await runEval(options(out, gen, { benchmarks: ['VSTAR'] }));
    expect(o).toMatchObject({ generated: 2, newErrors: 1, complete: true });
    expect(items(file(out, 'vstar_bench'))[1]).toEqual({ id: 1, label: 'C', category: 'direct_attributes', error: 'image too large for the context' });
  });

  test('--retry-errors computes error items again', async () => {
    const out = tmpOut();
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'eval-data-'));
    fs.cpSync(path.join(DATA, 'vstar_bench'), path.join(root, 'vstar_bench'), { recursive: true });
    const img = path.join(root, 'vstar_bench', 'relative_position', 'sa_1205.jpg');
    const saved = fs.readFileSync(img);
    fs.rmSync(img);
    await runEval(options(out, new FakeGenerator(), { dataRoot: root, benchmarks: ['VSTAR'] }));
    expect((items(file(out, 'vstar_bench'))[2] as ErrorItem).error).toBe(`image not found: ${img}`);
    fs.writeFileSync(img, saved);
    const plain = new FakeGenerator();
    await runEval(options(out, plain, { dataRoot: root, benchmarks: ['VSTAR'] }));
    expect(plain.calls).toHaveLength(0); // finished items, errors included, are not recomputed
    const retry = new FakeGenerator();
    await runEval(options(out, retry, { dataRoot: root, benchmarks: ['VSTAR'], retryErrors: true }));
    expect(retry.calls).toHaveLength(1);
    expect(summaryOf(file(out, 'vstar_bench'))).toMatchObject({ n: 3, errors: 0 });
  });

  test('--base-model writes decoding_by_baseline/<run>/baseline.json with latentSteps null', async () => {
    const out = tmpOut();
    const gen = new FakeGenerator();
    await runEval(options(out, gen, { benchmarks: ['MMVP'], baseModel: true }));
    expect(fs.existsSync(file(out, 'MMVP', 'baseline', 'decoding_by_baseline'))).toBe(true);
    expect(gen.calls.every((c) => c.latentSteps === null)).toBe(true);
  });

  test('a wrong layout fails before any generation, naming the expected file', async () => {
    const gen = new FakeGenerator();
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'eval-empty-'));
    await expect(runEval(options(tmpOut(), gen, { dataRoot: root, benchmarks: ['MMVP'] }))).rejects.toThrow(
      `MMVP: expected file ${path.join(root, 'MMVP', 'Questions.csv')} was not found`,
    );
    expect(gen.calls).toHaveLength(0);
  });
});

describe('a real kill -9', () => {
  test('SIGKILL mid-run leaves a valid file; the re-run does only what is missing', async () => {
    const out = tmpOut();
    const child = spawn(process.execPath, [path.join(__dirname, 'helpers', 'slow-eval-child.js'), DATA, out, 'MME-RealWorld-Lite'], { stdio: 'pipe' });
    const f = file(out, 'MME-RealWorld-Lite');
    const started = Date.now();
    // wait until two items are on disk, then kill without warning
    while (!(fs.existsSync(f) && items(f).length >= 2)) {
      if (Date.now() - started > 20000) throw new Error('child made no progress');
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const kept = items(f).length;
    expect(kept).toBeGreaterThanOrEqual(2);
    expect(kept).toBeLessThan(4);
    const gen = new FakeGenerator();
    const [o] = await runEval(options(out, gen, { benchmarks: ['MME-RealWorld-Lite'] }));
    expect(gen.calls).toHaveLength(4 - kept);
    expect(o).toMatchObject({ alreadyDone: kept, complete: true });
    expect(items(f)).toHaveLength(4);
  });
});

describe('resuming under other settings', () => {
  test('a result file written with other generation settings or labels is never resumed into: one-line error', async () => {
    const out = tmpOut();
    await runEval(options(out, new FakeGenerator(), { benchmarks: ['BLINK', 'MMVP'], limit: 2 }));
    await expect(runEval(options(out, new FakeGenerator(), { benchmarks: ['BLINK'], limit: 3, maxNewTokens: 256 }))).rejects.toThrow(
      `${file(out, 'blink')} was written with max_new_tokens 512, this run has 256: use another --run-name (or --output-dir), or the same settings`,
    );
    await expect(runEval(options(out, new FakeGenerator(), { benchmarks: ['BLINK'], limit: 3, benchmarkOptions: { blinkPrompt: 'official' } }))).rejects.toThrow(
      'was written with blinkPrompt "upstream", this run has "official"',
    );
    await expect(runEval(options(out, new FakeGenerator(), { benchmarks: ['MMVP'], limit: 3, benchmarkOptions: { mmvpFixPairs: true } }))).rejects.toThrow(
      'was written with mmvpFixPairs false, this run has true',
    );
    // the same settings extend the run; other subtask choices are not a conflict (they only add items)
    const res = await runEval(options(out, new FakeGenerator(), { benchmarks: ['BLINK'], limit: 3, benchmarkOptions: { blinkSubtasks: 'upstream' } }));
    expect(res[0]).toMatchObject({ alreadyDone: 2, generated: 1 });
  });
});
