// vreflect bench kernels: attention forward/backward (seq 512-16k, head dim 128, 28:4 GQA, causal and not), the
// BCM/DAC resampler cross-attention (8 queries x N keys, 8 heads of 448) and the 7B's GEMMs - our CPU kernels,
// our CUDA kernels (build/vreflect_cuda_bench, on a GPU) and PyTorch (scripts_bench/torch_kernels.py, when torch
// with CUDA is importable), side by side in TFLOP/s; with --elementwise also the memory-bound kernels (SwiGLU,
// RMSNorm, RoPE, converts, cross-entropy, ...: GPU and PyTorch sides, GB/s). A benchmark: figures, not a test.
import type { CommandModule } from 'yargs';

import { mergeKernelRuns, renderKernelsText, SideRun } from '../../bench/kernels_report';
import { runCpuKernels, runGpuSide, runTorchSide } from '../../bench/kernels_run';
import { loadAddon } from '../../native/addon';
import { UserError } from '../../util/errors';
import { log } from '../../util/log';

interface BenchKernelsArgs {
  quick: boolean;
  elementwise: boolean;
  sides: string;
  'cpu-max-seq': number;
  'cuda-bench'?: string;
  python?: string;
  threads?: number;
  timeout: number;
  json: boolean;
}

export const benchKernelsCommand: CommandModule<object, BenchKernelsArgs> = {
  command: 'kernels',
  describe: 'attention fwd/bwd, resampler and GEMM TFLOP/s: our CPU and CUDA kernels beside PyTorch',
  builder: (y) =>
    y
      .option('quick', { type: 'boolean', default: false, describe: 'fewer shapes (seq 512 and 2k, one resampler and GEMM size)' })
      .option('elementwise', { type: 'boolean', default: false, describe: 'also the memory-bound kernels (SwiGLU, RMSNorm, RoPE, converts, cross-entropy, AdamW ...) in GB/s: GPU and PyTorch sides' })
      .option('sides', { type: 'string', default: 'cpu,gpu,torch', describe: 'which sides to run, comma-separated: cpu, gpu, torch' })
      .option('cpu-max-seq', { type: 'number', default: 4096, describe: 'longest attention sequence timed on the CPU (16384 takes minutes)' })
      .option('cuda-bench', { type: 'string', describe: 'the GPU benchmark binary (default build/vreflect_cuda_bench)' })
      .option('python', { type: 'string', describe: 'Python with torch for the PyTorch side (default $VREFLECT_PYTHON, else python3)' })
      .option('threads', { type: 'number', describe: 'CPU threads (default: all cores)' })
      .option('timeout', { type: 'number', default: 1800, describe: 'seconds allowed for each of the GPU and PyTorch runs' })
      .option('json', { type: 'boolean', default: false, describe: 'print the merged report as one JSON object' })
      .example('$0 bench kernels --quick', '')
      .example('VREFLECT_PYTHON=/opt/torch/bin/python $0 bench kernels --json', 'on a GPU machine with PyTorch'),
  handler: (args) => {
    const sides = args.sides.split(',').map((s) => s.trim()).filter(Boolean);
    for (const s of sides) if (!['cpu', 'gpu', 'torch'].includes(s)) throw new UserError(`--sides: unknown side "${s}" (cpu, gpu, torch)`);
    if (!Number.isInteger(args['cpu-max-seq']) || args['cpu-max-seq'] < 512) throw new UserError(`--cpu-max-seq must be an integer >= 512, got ${args['cpu-max-seq']}`);
    if (!(args.timeout > 0)) throw new UserError(`--timeout must be positive, got ${args.timeout}`);
    if (args.threads !== undefined) {
      if (!Number.isInteger(args.threads) || args.threads < 1) throw new UserError(`--threads must be an integer >= 1, got ${args.threads}`);
      loadAddon().setThreads(args.threads);
    }
    const runs: SideRun[] = [];
    if (sides.includes('cpu')) runs.push({ side: 'cpu', bench: runCpuKernels({ quick: args.quick, maxSeq: args['cpu-max-seq'], say: (l) => log().debug(l) }) });
    if (sides.includes('gpu')) runs.push(runGpuSide({ binary: args['cuda-bench'], quick: args.quick, elementwise: args.elementwise, timeoutS: args.timeout }));
    if (sides.includes('torch')) runs.push(runTorchSide({ python: args.python, quick: args.quick, elementwise: args.elementwise, timeoutS: args.timeout }));
    for (const r of runs) if (r.skipped) log().info({ side: r.side, reason: r.skipped }, 'side skipped');
    const report = mergeKernelRuns(runs);
    process.stdout.write(args.json ? JSON.stringify(report) + '\n' : renderKernelsText(report));
  },
};
