// vreflect bench infer: inference speed and memory on a Qwen2.5-VL-7B-shaped model with few layers, side by
// side with PyTorch + transformers, against the GEMM-peak and bandwidth rooflines measured on this machine.
// A benchmark, not a test: it prints figures and target checks and exits 0 whether targets are met or not.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Argv, CommandModule } from 'yargs';

import { BENCH_IMAGE_SIZE, benchImageTokens, checkBenchImageSize } from '../../bench/bench_image';
import { runInferBench } from '../../bench/infer_bench';
import { renderMarkdown, renderText, Dtype } from '../../bench/report';
import { DEFAULT_BATCH_SPEC } from '../../bench/train_batch';
import { runTrainBench } from '../../bench/train_bench';
import { checkTrainShape, DEFAULT_TRAIN_SHAPE } from '../../bench/train_model';
import { renderTrainMarkdown, renderTrainText } from '../../bench/train_report';
import { benchDevicePreflight, benchTrainDevicePreflight } from '../../plan/device_runs';
import { DEVICE_OPTION, DeviceChoice, requireCudaAddon } from '../../plan/preflight';
import { UserError } from '../../util/errors';
import { requireIntArg } from '../int_arg';
import { benchKernelsCommand } from './bench_kernels';
import { log } from '../../util/log';
import { startProgress } from '../../util/progress';

/** Log lines, and a bar while the benchmark checkpoint is written: the hooks of bench infer and bench train. */
function benchHooks() {
  let bar: ReturnType<typeof startProgress> | undefined;
  return {
    say: (line: string) => log().info(line),
    debug: (line: string) => log().debug(line),
    onCheckpointProgress: (done: number, total: number) => {
      bar ??= startProgress('writing the benchmark checkpoint (MB)', Math.round(total / 1e6));
      bar.update(Math.round(done / 1e6));
      if (done >= total) bar.stop();
    },
  };
}

/** The --markdown README snippet, then the report on stdout (--json: one line of JSON, else the text table). */
function emitReport<R>(args: { markdown?: string; json: boolean }, report: R, markdown: (r: R) => string, text: (r: R) => string): void {
  if (args.markdown) {
    fs.mkdirSync(path.dirname(path.resolve(args.markdown)), { recursive: true });
    fs.writeFileSync(args.markdown, markdown(report));
    log().info(`README snippet written to ${args.markdown}`);
  }
  process.stdout.write(args.json ? JSON.stringify(report) + '\n' : text(report));
}

interface BenchInferArgs {
  'model-dir'?: string;
  'llm-layers': number;
  'vit-layers': number;
  regenerate: boolean;
  dtype: 'bf16' | 'fp32' | 'both';
  'new-tokens': number;
  repeats: number;
  warmup: number;
  threads: number;
  torch: 'auto' | 'on' | 'off';
  python?: string;
  ours: boolean;
  probes: boolean;
  'wait-idle': number;
  'image-size': number;
  json: boolean;
  markdown: string;
  device: DeviceChoice;
}


const inferCommand: CommandModule<object, BenchInferArgs> = {
  command: 'infer',
  describe: 'prefill ms, decode ms/token and peak RSS on a 7B-shaped model with few layers, vs PyTorch + transformers',
  builder: (y) =>
    y
      .option('model-dir', { type: 'string', describe: 'checkpoint directory (generated if absent; default ~/.cache/vreflect/bench-7b-L<n>-V<m>, or $VREFLECT_BENCH_DIR)' })
      .option('llm-layers', { type: 'number', default: 4, describe: 'LLM decoder layers (the 7B has 28)' })
      .option('vit-layers', { type: 'number', default: 4, describe: 'ViT blocks (the 7B has 32); the last one uses full attention' })
      .option('regenerate', { type: 'boolean', default: false, describe: 'rewrite the checkpoint even if a complete one exists' })
      .option('dtype', { choices: ['bf16', 'fp32', 'both'] as const, default: 'both' as const, describe: 'compute precision(s) to measure' })
      .option('new-tokens', { type: 'number', default: 32, describe: 'decode steps timed per run' })
      .option('repeats', { type: 'number', default: 3, describe: 'timed runs per engine and dtype (medians are reported)' })
      .option('warmup', { type: 'number', default: 1, describe: 'untimed runs first' })
      .option('threads', { type: 'number', default: os.cpus().length, describe: 'threads for both engines' })
      .option('torch', { choices: ['auto', 'on', 'off'] as const, default: 'auto' as const, describe: 'run PyTorch + transformers too (auto: when importable)' })
      .option('python', { type: 'string', describe: 'Python with torch + transformers (default $VREFLECT_PYTHON, else python3)' })
      .option('ours', { type: 'boolean', default: true, describe: 'run our engine (--no-ours: PyTorch and probes only)' })
      .option('probes', { type: 'boolean', default: true, describe: 'measure GEMM peak and read bandwidth (--no-probes skips them)' })
      .option('wait-idle', { type: 'number', default: 300, describe: 'before each measurement, wait up to this many seconds for other work to stop (0 = never wait)' })
      .option('image-size', { type: 'number', default: BENCH_IMAGE_SIZE, describe: 'side of the square test image in pixels, a multiple of 28 (448: 256 image tokens, 305-token prompt; 896: 1024 image tokens)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the whole report as one JSON object' })
      .option('markdown', { type: 'string', default: path.join('.bench', 'bench-infer.md'), describe: 'also write a README snippet with the figures here ("" = no file)' })
      .option('device', DEVICE_OPTION)
      .example('$0 bench infer', 'generate the 4+4-layer checkpoint once, then measure bf16 and fp32, ours and transformers')
      .example('VREFLECT_PYTHON=/work/pyenv/bin/python $0 bench infer --dtype bf16 --repeats 5 --json', '')
      .example('$0 bench infer --dtype bf16 --image-size 896', 'a larger input: 1024 image tokens, 1073-token prompt'),
  handler: async (args) => {
    requireIntArg('--llm-layers', args['llm-layers'], 1, 28);
    requireIntArg('--vit-layers', args['vit-layers'], 1, 32);
    requireIntArg('--new-tokens', args['new-tokens'], 1, 4096);
    requireIntArg('--repeats', args.repeats, 1, 100);
    requireIntArg('--threads', args.threads, 1, 4096);
    if (!(args['wait-idle'] >= 0 && args['wait-idle'] <= 86400)) throw new UserError(`--wait-idle must be between 0 and 86400 seconds, got ${args['wait-idle']}`);
    const sizeError = checkBenchImageSize(args['image-size']);
    if (sizeError) throw new UserError(sizeError);
    requireIntArg('--warmup', args.warmup, 0, 100);
    if (args['model-dir'] !== undefined && fs.existsSync(args['model-dir']) && !fs.statSync(args['model-dir']).isDirectory())
      throw new UserError(`--model-dir is not a directory: ${args['model-dir']}`);
    const device = benchDevicePreflight({ device: args.device, llmLayers: args['llm-layers'], vitLayers: args['vit-layers'],
      imageTokens: benchImageTokens(args['image-size']), newTokens: args['new-tokens'] });
    // The CUDA path has one precision (bf16 operands, fp32 accumulation): --dtype both means bf16 there.
    if (device === 'cuda' && args.dtype === 'fp32') throw new UserError('--dtype fp32 runs on the CPU only: bench infer --device cuda measures bf16');
    const dtypes: Dtype[] = device === 'cuda' ? ['bf16'] : args.dtype === 'both' ? ['bf16', 'fp32'] : [args.dtype];
    // Before the (large) checkpoint is written: the addon itself must be able to use the GPU.
    if (device === 'cuda') requireCudaAddon();

    const report = await runInferBench(
      {
        modelDir: args['model-dir'],
        llmLayers: args['llm-layers'],
        vitLayers: args['vit-layers'],
        regenerate: args.regenerate,
        dtypes,
        newTokens: args['new-tokens'],
        repeats: args.repeats,
        warmup: args.warmup,
        threads: args.threads,
        torch: args.torch,
        python: args.python,
        ours: args.ours,
        probes: args.probes,
        waitIdleS: args['wait-idle'],
        imageSize: args['image-size'],
        device,
      },
      benchHooks(),
    );
    emitReport(args, report, renderMarkdown, renderText);
  },
};

export interface BenchTrainArgs {
  'model-dir'?: string;
  'llm-layers': number;
  'vit-layers': number;
  vocab: number;
  regenerate: boolean;
  samples: number;
  tokens: number;
  'image-size': number;
  'answer-tokens': number;
  steps: number;
  warmup: number;
  'gradient-accumulation-steps': number;
  threads: number;
  torch: 'auto' | 'on' | 'off';
  'torch-modes': string;
  python?: string;
  ours: boolean;
  probes: boolean;
  'wait-idle': number;
  'gradient-checkpointing': 'auto' | 'on' | 'off';
  json: boolean;
  markdown: string;
  device: DeviceChoice;
}

/** Upstream's recipe: per-device batch 1 pack, 8 accumulation steps per optimizer step (docs/method.md). */
const UPSTREAM_GRADIENT_ACCUMULATION = 8;

const torchModes = (args: BenchTrainArgs) => args['torch-modes'].split(',').map((m) => m.trim()).filter(Boolean);

/** The `bench train` arguments yargs cannot check itself; throws a one-line UserError naming the flag. */
export function checkBenchTrainArgs(args: BenchTrainArgs): void {
  const shape = { llmLayers: args['llm-layers'], vitLayers: args['vit-layers'], vocab: args.vocab };
  try {
    checkTrainShape(shape);
  } catch (e) {
    throw new UserError(`--llm-layers/--vit-layers/--vocab: ${(e as Error).message}`);
  }
  requireIntArg('--samples', args.samples, 1, 16);
  requireIntArg('--tokens', args.tokens, 1, 32768);
  requireIntArg('--image-size', args['image-size'], 1, 4096);
  if (!Number.isInteger(args['answer-tokens']) || args['answer-tokens'] < 0) throw new UserError(`--answer-tokens must be a non-negative integer, got ${args['answer-tokens']}`);
  requireIntArg('--steps', args.steps, 1, 100);
  requireIntArg('--gradient-accumulation-steps', args['gradient-accumulation-steps'], 1, 1024);
  requireIntArg('--threads', args.threads, 1, 4096);
  requireIntArg('--warmup', args.warmup, 0, 100);
  if (!(args['wait-idle'] >= 0 && args['wait-idle'] <= 86400)) throw new UserError(`--wait-idle must be between 0 and 86400 seconds, got ${args['wait-idle']}`);
  for (const m of torchModes(args)) if (m !== 'plain' && m !== 'checkpointing') throw new UserError(`--torch-modes: unknown mode "${m}" (plain, checkpointing)`);
  if (args['model-dir'] !== undefined && fs.existsSync(args['model-dir']) && !fs.statSync(args['model-dir']).isDirectory())
    throw new UserError(`--model-dir is not a directory: ${args['model-dir']}`);
}

export const benchTrainCommand: CommandModule<object, BenchTrainArgs> = {
  command: 'train',
  describe: 'stage-1 training step time, tokens/s, peak RSS and MFU on a 7B-widths model with few layers, vs PyTorch eager',
  builder: (y) =>
    y
      .option('model-dir', { type: 'string', describe: 'checkpoint directory (generated if absent; default ~/.cache/vreflect/bench-train-7b-L<n>-V<m>-v<vocab>, or under $VREFLECT_BENCH_DIR)' })
      .option('llm-layers', { type: 'number', default: DEFAULT_TRAIN_SHAPE.llmLayers, describe: 'LLM decoder layers (16 B of fp32 weights, gradients and AdamW moments per trained parameter: ~3.7 GB per layer)' })
      .option('vit-layers', { type: 'number', default: DEFAULT_TRAIN_SHAPE.vitLayers, describe: 'ViT blocks (frozen, forward only)' })
      .option('vocab', { type: 'number', default: DEFAULT_TRAIN_SHAPE.vocab, describe: 'rows of embed_tokens / lm_head (the 7B has 152064, too big to train here); special tokens are remapped into it' })
      .option('regenerate', { type: 'boolean', default: false, describe: 'rewrite the checkpoint even if a complete one exists' })
      .option('samples', { type: 'number', default: DEFAULT_BATCH_SPEC.samples, describe: 'samples per micro-batch (each with one image and one box)' })
      .option('tokens', { type: 'number', default: DEFAULT_BATCH_SPEC.tokensPerSample, describe: 'tokens per sample (image tokens + text)' })
      .option('image-size', { type: 'number', default: DEFAULT_BATCH_SPEC.imageSize, describe: 'square image side in px, a multiple of 28 (672: 576 image tokens)' })
      .option('answer-tokens', { type: 'number', default: DEFAULT_BATCH_SPEC.answerTokens, describe: 'supervised answer tokens after the latent block' })
      .option('steps', { type: 'number', default: 3, describe: 'timed optimizer steps per engine (medians are reported)' })
      .option('warmup', { type: 'number', default: 1, describe: 'untimed optimizer steps first' })
      .option('gradient-accumulation-steps', {
        alias: 'ga',
        type: 'number',
        default: UPSTREAM_GRADIENT_ACCUMULATION,
        describe: "forward+backward passes over the micro-batch per optimizer step (one clip + AdamW update each); 8 is upstream's training recipe, 1 times a single micro-batch + update",
      })
      .option('threads', { type: 'number', default: os.cpus().length, describe: 'threads for both engines' })
      .option('torch', { choices: ['auto', 'on', 'off'] as const, default: 'auto' as const, describe: 'run PyTorch + transformers too (auto: when importable)' })
      .option('torch-modes', { type: 'string', default: 'plain,checkpointing', describe: 'PyTorch variants: plain (eager), checkpointing (eager + gradient checkpointing), comma-separated' })
      .option('python', { type: 'string', describe: 'Python with torch + transformers (default $VREFLECT_PYTHON, else python3)' })
      .option('ours', { type: 'boolean', default: true, describe: 'run our trainer (--no-ours: PyTorch and probes only)' })
      .option('gradient-checkpointing', {
        choices: ['auto', 'on', 'off'] as const,
        default: 'auto' as const,
        describe: "our trainer's layer recomputation, as in train-stage1 (auto: off when the kept activations fit; on cuda the GPU memory plan decides)",
      })
      .option('probes', { type: 'boolean', default: true, describe: 'measure the bf16 GEMM peak (--no-probes: no MFU)' })
      .option('wait-idle', { type: 'number', default: 300, describe: 'before each measurement, wait up to this many seconds for other work to stop (0 = never wait)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the whole report as one JSON object' })
      .option('markdown', { type: 'string', default: path.join('.bench', 'bench-train.md'), describe: 'also write a README snippet with the figures here ("" = no file)' })
      .option('device', DEVICE_OPTION)
      .example('VREFLECT_PYTHON=/work/pyenv/bin/python $0 bench train', 'generate the 2+4-layer, 16k-vocabulary checkpoint once, then time ours and PyTorch: 8 micro-batches + one AdamW update per step')
      .example('$0 bench train --ga 1 --torch off', 'one micro-batch + one update per step (how steps were timed before accumulation)')
      .example('$0 bench train --device cuda', 'the GPU trainer and PyTorch on cuda: tokens/s, MFU against the GPU\'s datasheet bf16 peak, peak device memory'),
  handler: async (args) => {
    checkBenchTrainArgs(args);
    const shape = { llmLayers: args['llm-layers'], vitLayers: args['vit-layers'], vocab: args.vocab };
    const modes = torchModes(args);
    const td = benchTrainDevicePreflight({
      device: args.device, llmLayers: args['llm-layers'], vitLayers: args['vit-layers'], vocab: args.vocab, tokens: args.samples * args.tokens,
      imageTokens: args.samples * benchImageTokens(args['image-size']), gradientCheckpointing: args['gradient-checkpointing'],
    });
    // Before the (large) checkpoint is written: the addon itself must be able to use the GPU.
    if (td.device === 'cuda' && args.ours) requireCudaAddon();
    const batch = { ...DEFAULT_BATCH_SPEC, samples: args.samples, tokensPerSample: args.tokens, imageSize: args['image-size'], answerTokens: args['answer-tokens'] };

    const report = await runTrainBench(
      {
        modelDir: args['model-dir'], shape, regenerate: args.regenerate, batch, steps: args.steps, warmup: args.warmup,
        gradientAccumulationSteps: args['gradient-accumulation-steps'], threads: args.threads,
        torch: args.torch, torchModes: modes as ('plain' | 'checkpointing')[], python: args.python, ours: args.ours, probes: args.probes,
        waitIdleS: args['wait-idle'], lr: 1e-5, maxGradNorm: 1.0,
        // cuda: the GPU plan decided auto (off when every layer's activations fit)
        checkpointing: td.device === 'cuda' ? (td.checkpointing === false ? 'off' : 'on') : args['gradient-checkpointing'],
        device: td.device, ...(td.optimizerStates ? { optimizerStates: td.optimizerStates } : {}),
      },
      benchHooks(),
    );
    emitReport(args, report, renderTrainMarkdown, renderTrainText);
  },
};

export const benchCommand: CommandModule<object, object> = {
  command: 'bench',
  describe: 'benchmarks (figures, not tests): `bench infer`, `bench train`, `bench kernels`',
  builder: (y: Argv) =>
    y
      .command(inferCommand as CommandModule<object, any>)
      .command(benchTrainCommand as CommandModule<object, any>)
      .command(benchKernelsCommand as CommandModule<object, any>)
      .demandCommand(1, 'name a benchmark: infer, train, kernels'),
  handler: () => {},
};
