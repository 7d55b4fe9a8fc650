// Child process for the kill -9 test: runs the real runner (src/ transpiled on load) on the fixtures with a
// slow fake generator, so the parent can SIGKILL it mid-run. argv: <dataRoot> <outDir> <benchmark>
'use strict';
const fs = require('fs');
const path = require('path');
const ts = require('typescript');

require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: filename,
  }).outputText;
  module._compile(out, filename);
};

const { runEval } = require(path.join(__dirname, '..', '..', '..', '..', 'src', 'eval', 'runner.ts'));
const [dataRoot, outputDir, bench] = process.argv.slice(2);
runEval({
  dataRoot,
  outputDir,
  benchmarks: [bench],
  steps: [8],
  baseModel: false,
  runName: 'fake-run',
  model: 'none',
  maxNewTokens: 512,
  singleResize: false,
  getGenerator: async () => ({
    generate: async () => {
      await new Promise((r) => setTimeout(r, 150));
      return { text: '<answer> A </answer><|im_end|>' };
    },
  }),
  logger: { info: () => {}, warn: () => {} },
  progress: () => ({ update: () => {}, stop: () => {} }),
}).then(
  () => process.stdout.write('done\n'),
  (err) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  },
);
