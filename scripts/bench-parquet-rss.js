#!/usr/bin/env node
// Benchmark (not a test): peak RSS of the eval pipeline while it streams a large synthetic HR-Bench parquet,
// shaped like the published file at its worst: ONE row group, base64 image strings of ~1.25 MB (one per
// 1 MB page), no page index. Eval runs with a fake generator (no model), so the figure is eval's own memory.
//
//   node scripts/bench-parquet-rss.js [--size-mb 1000] [--dir /tmp/hrbench-rss] [--keep] [--whole]
//   node scripts/bench-parquet-rss.js --file PATH.parquet [--benchmark BLINK] [--whole]
//
// --file measures an existing HR-Bench-shaped parquet instead (e.g. one written by pyarrow with
// test/fixtures/eval/make_hf_parquet.py --synthetic-hrbench PATH), or with --benchmark BLINK a BLINK val file
// (make_hf_parquet.py --synthetic-blink PATH; read as the Counting config). The file is linked into a
// temporary data root and never deleted.
// --whole also measures hyparquet reading the row group whole (what streaming avoids), for comparison.
// Runs src/ directly (TypeScript transpiled on load); needs Node >= 20.19 (require of ES modules).
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const ROOT = path.resolve(__dirname, '..');

function registerTypeScript() {
  const ts = require('typescript');
  require.extensions['.ts'] = (module, filename) => {
    const source = fs.readFileSync(filename, 'utf8');
    const out = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: filename,
    }).outputText;
    module._compile(out, filename);
  };
}

/** Child: write the synthetic file with hyparquet-writer (its memory does not count). */
function generate(file, sizeMb) {
  const rows = 800;
  const rawBytes = Math.round((sizeMb * 1e6 * 0.75) / rows); // base64 grows by 4/3
  const script = `
    import { parquetWriteFile } from 'hyparquet-writer';
    import { randomBytes } from 'node:crypto';
    const rows = ${rows};
    const col = (name, f, type = 'STRING') => ({ name, data: Array.from({ length: rows }, (_, i) => f(i)), type, offsetIndex: false });
    parquetWriteFile({
      filename: ${JSON.stringify(file)},
      rowGroupSize: 1000000,
      columnData: [
        col('index', (i) => BigInt(i), 'INT64'),
        col('question', (i) => 'Synthetic question ' + (i % 200) + '?'),
        col('answer', (i) => 'ABCD'[i % 4]),
        col('category', (i) => (i % 2 ? 'cross' : 'single')),
        col('A', () => 'a'), col('B', () => 'b'), col('C', () => 'c'), col('D', () => 'd'),
        col('cycle_category', (i) => 'cycle_' + (i % 4)),
        col('image', () => randomBytes(${rawBytes}).toString('base64')),
      ],
    });`;
  execFileSync(process.execPath, ['--max-old-space-size=8192', '--input-type=module', '-e', script], { cwd: ROOT, stdio: 'inherit' });
}

/** Child: stream every item through the runner with a fake generator; print peak RSS. */
async function measure(dataRoot, outDir, mode, benchmark) {
  registerTypeScript();
  const { runEval } = require(path.join(ROOT, 'src/eval/runner.ts'));
  const { parquetSettings } = require(path.join(ROOT, 'src/eval/io/parquet.ts'));
  if (mode === 'whole') parquetSettings.streamAbove = Number.MAX_SAFE_INTEGER;
  let sampledPeak = 0;
  const timer = setInterval(() => (sampledPeak = Math.max(sampledPeak, process.memoryUsage().rss)), 50);
  const t0 = Date.now();
  let imageBytes = 0;
  await runEval({
    dataRoot,
    outputDir: outDir,
    benchmarks: [benchmark],
    benchmarkOptions: { blinkSubtasks: ['Counting'] },
    steps: [8],
    baseModel: false,
    runName: 'rss-bench',
    model: 'none',
    maxNewTokens: 512,
    singleResize: false,
    checkImages: false, // random bytes are no JPEG; the engine would decode them
    getGenerator: async () => ({ generate: async (req) => ((imageBytes += req.images[0].length), { text: '<answer> A </answer><|im_end|>' }) }),
    logger: { info: () => {}, warn: () => {} },
    progress: () => ({ update: () => {}, stop: () => {} }),
  });
  clearInterval(timer);
  const maxRss = process.resourceUsage().maxRSS * 1024;
  console.log(JSON.stringify({ mode, seconds: (Date.now() - t0) / 1000, image_mb: imageBytes / 1e6, peak_rss_mb: maxRss / 1e6, sampled_peak_rss_mb: sampledPeak / 1e6 }));
}

async function main() {
  if (args[0] === '--child') return measure(args[1], args[2], args[3], args[4]);
  const benchmark = flag('--benchmark', 'HRBench4K');
  if (!['HRBench4K', 'BLINK'].includes(benchmark)) throw new Error(`--benchmark ${benchmark}: use HRBench4K or BLINK`);
  if (benchmark === 'BLINK' && !flag('--file', undefined)) throw new Error('--benchmark BLINK needs --file');
  const given = flag('--file', undefined);
  const dir = given ? fs.mkdtempSync(path.join(os.tmpdir(), 'hrbench-rss-')) : flag('--dir', path.join(os.tmpdir(), 'hrbench-rss'));
  const sizeMb = Number(flag('--size-mb', '1000'));
  const file = benchmark === 'BLINK' ? path.join(dir, 'BLINK', 'Counting', 'val-00000-of-00001.parquet') : path.join(dir, 'HR-Bench', 'hr_bench_4k.parquet');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (given) {
    if (!fs.existsSync(given)) throw new Error(`--file ${given} does not exist`);
    fs.symlinkSync(path.resolve(given), file);
  } else if (!fs.existsSync(file) || Math.abs(fs.statSync(file).size / 1e6 - sizeMb) > sizeMb * 0.1) {
    console.log(`writing ${sizeMb} MB synthetic HR-Bench parquet to ${file} ...`);
    generate(file, sizeMb);
  }
  console.log(`file: ${(fs.statSync(file).size / 1e6).toFixed(0)} MB, node ${process.version}`);
  for (const mode of args.includes('--whole') ? ['stream', 'whole'] : ['stream']) {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rss-out-'));
    const line = execFileSync(process.execPath, [__filename, '--child', dir, out, mode, benchmark], { cwd: ROOT, encoding: 'utf8' });
    console.log(line.trim());
    fs.rmSync(out, { recursive: true, force: true });
  }
  if (given || !args.includes('--keep')) fs.rmSync(dir, { recursive: true, force: true }); // a link: the file stays
}

main().catch((err) => {
  console.error(`bench-parquet-rss: ${err.message}`);
  process.exit(1);
});
