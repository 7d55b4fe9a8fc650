// `vreflect eval` end to end on the tiny golden checkpoint: all six benchmarks from fixture files in their
// published formats, latent quotas 0 and 8, then `eval score`, then a resumed re-run that must not need the model.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'vreflect.js');
const MODEL = path.join(ROOT, 'test', 'golden', 'models', 'tiny-flat');
const DATA = path.join(ROOT, 'test', 'fixtures', 'eval', 'data');

function vreflect(args: string[], level = 'warn') {
  const r = spawnSync(process.execPath, [BIN, ...args, '--log-level', level], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 300000,
    env: { ...process.env, VREFLECT_LOG_JSON: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const BENCH_DIRS: Record<string, string> = {
  BLINK: 'blink',
  MMVP: 'MMVP',
  VSTAR: 'vstar_bench',
  HRBench4K: 'HRBench4K',
  HRBench8K: 'HRBench8K',
  'MME-RealWorld-Lite': 'MME-RealWorld-Lite',
};

describe('vreflect eval (CLI, tiny checkpoint, six fixture benchmarks)', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-eval-'));
  let first: ReturnType<typeof vreflect>;

  beforeAll(() => {
    first = vreflect(['eval', '--model', MODEL, '--data-root', DATA, '--steps', '0,8', '--max-new-tokens', '12', '--output-dir', out]);
  });

  test('writes every benchmark x run with all items accounted for', () => {
    expect(first.stderr).not.toMatch(/"level":(50|60)/);
    expect(first.code).toBe(0);
    for (const [bench, dir] of Object.entries(BENCH_DIRS)) {
      for (const run of ['step0', 'step8']) {
        const file = path.join(out, dir, 'decoding_by_steps', 'tiny-flat', `${run}.json`);
        const items = JSON.parse(fs.readFileSync(file, 'utf8'));
        const summary = items[0];
        expect(summary.complete).toBe(true);
        expect(items.length - 1).toBe(summary.expected_total);
        for (const it of items.slice(1)) {
          if (it.error) continue;
          expect(typeof it.prediction[0]).toBe('string');
          expect(it.prediction[0].length).toBeGreaterThan(0);
        }
        expect(bench in JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'))).toBe(true);
      }
    }
  });

  test('eval score recomputes the same accuracies from the files', () => {
    const r = vreflect(['eval', 'score', out, '--json']);
    expect(r.code).toBe(0);
    const scored = JSON.parse(r.stdout);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    for (const bench of Object.keys(BENCH_DIRS))
      for (const run of ['step0', 'step8']) {
        expect(scored[bench][run].n).toBe(summary[bench][run].n);
        expect(scored[bench][run].accuracy_upstream).toBe(summary[bench][run].accuracy_upstream);
        expect(scored[bench][run].accuracy_official).toBe(summary[bench][run].accuracy_official);
      }
  });

  test('a finished run resumes: nothing is generated again', () => {
    const r = vreflect(['eval', '--model', MODEL, '--data-root', DATA, '--steps', '0,8', '--max-new-tokens', '12', '--output-dir', out], 'info');
    expect(r.code).toBe(0);
    const finished = r.stderr.split('\n').filter((l) => l.includes('eval run finished')).map((l) => JSON.parse(l));
    expect(finished.length).toBe(12);
    for (const f of finished) {
      expect(f.generated).toBe(0);
      expect(f.complete).toBe(true);
    }
  });
});

describe('vreflect eval on pyarrow-written HF parquet (BLINK Image structs, HR-Bench base64, snappy)', () => {
  test('streams, generates and scores with no error items', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vr-eval-hf-'));
    const data = path.join(ROOT, 'test', 'fixtures', 'eval', 'hf');
    const r = vreflect(['eval', '--model', MODEL, '--data-root', data, '--benchmarks', 'BLINK,HRBench4K,HRBench8K', '--limit', '3', '--steps', '8', '--max-new-tokens', '8', '--output-dir', out]);
    expect(r.code).toBe(0);
    const s = vreflect(['eval', 'score', out, '--json']);
    const scored = JSON.parse(s.stdout);
    for (const b of ['BLINK', 'HRBench4K', 'HRBench8K']) expect([scored[b].step8.n, scored[b].step8.errors]).toEqual([3, 0]);
  });
});
