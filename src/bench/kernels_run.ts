// The three sides of `vreflect bench kernels`: our CPU kernels through the addon's probes (here), our CUDA
// kernels through build/vreflect_cuda_bench (needs a GPU), PyTorch through scripts_bench/torch_kernels.py (needs
// torch with CUDA). Each returns a KernelBench or the reason it was skipped.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { addonPath, loadAddon } from '../native/addon';
import { probeCuda } from '../plan/cuda_device';
import type { SideRun } from './kernels_report';
import { COMPUTE_KERNELS, ELEMENTWISE_KERNELS, KernelBench, KernelResult, parseKernelBench } from './kernels_schema';
import { findBenchScript } from './torch_side';

export const ATTN_SEQS = [512, 1024, 2048, 4096, 8192, 16384];
export const QUICK_ATTN_SEQS = [512, 2048];
export const RESAMPLER_KEYS = [1024, 4096, 16384];
/** (K, N) of the 7B's GEMMs: fused qkv, o_proj, gate+up, down. */
export const GEMM_KN: [number, number][] = [[3584, 3584 + 2 * 512], [3584, 3584], [3584, 2 * 18944], [18944, 3584]];

export interface CpuKernelOptions {
  quick: boolean;
  /** longest attention sequence timed on the CPU (a 16k non-causal forward is ~4 TFLOP: minutes on a few cores) */
  maxSeq: number;
  say?: (line: string) => void;
}

/** Our CPU kernels (fp32 attention, bf16-weight GEMM as the engine runs them) on the 7B shapes. */
export function runCpuKernels(o: CpuKernelOptions): KernelBench {
  const addon = loadAddon();
  const results: KernelResult[] = [];
  const seqs = (o.quick ? QUICK_ATTN_SEQS : ATTN_SEQS).filter((s) => s <= o.maxSeq);
  const say = o.say ?? (() => {});
  for (const backward of [false, true])
    for (const causal of [true, false])
      for (const seq of seqs) {
        say(`cpu attention ${backward ? 'bwd' : 'fwd'} seq ${seq}${causal ? ' causal' : ''}`);
        const r = addon.benchAttention({ lq: seq, lk: seq, heads: 28, kvHeads: 4, headDim: 128, causal, backward, seconds: 0, minRepeats: 1 });
        results.push({ kernel: backward ? 'attention_bwd' : 'attention_fwd', shape: { seq, heads: 28, kv_heads: 4, head_dim: 128 }, dtype: 'fp32', causal, ms: r.bestMs, tflops: r.gflops / 1e3, impl: 'vreflect-cpu' });
      }
  for (const backward of [false, true])
    for (const keys of o.quick ? [RESAMPLER_KEYS[0]] : RESAMPLER_KEYS) {
      say(`cpu cross-attention ${backward ? 'bwd' : 'fwd'} 8 x ${keys}`);
      const r = addon.benchAttention({ lq: 8, lk: keys, heads: 8, kvHeads: 8, headDim: 448, causal: false, backward, seconds: 0.2, minRepeats: 2 });
      results.push({ kernel: backward ? 'cross_attention_bwd' : 'cross_attention_fwd', shape: { queries: 8, keys, heads: 8, head_dim: 448 }, dtype: 'fp32', ms: r.bestMs, tflops: r.gflops / 1e3, impl: 'vreflect-cpu' });
    }
  for (const m of o.quick ? [512] : [512, 2048])
    for (const [k, n] of GEMM_KN) {
      say(`cpu gemm ${m}x${n}x${k}`);
      const r = addon.benchGemm({ m, n, k, dtype: 'bf16', seconds: 0, minRepeats: 1 });
      results.push({ kernel: 'gemm', shape: { m, n, k }, dtype: 'bf16', ms: r.bestMs, tflops: r.gflops / 1e3, impl: 'vreflect-cpu' });
    }
  return { device: { name: `${os.cpus()[0]?.model ?? 'CPU'} (${addon.info().cpu.threads} threads)` }, date: new Date().toISOString(), results, failed: [] };
}

/** The arguments that pick the kernels of a GPU / PyTorch run: the defaults, plus the memory-bound ones when asked. */
function kernelArgs(o: { quick: boolean; elementwise?: boolean }): string[] {
  return [...(o.quick ? ['--quick'] : []), ...(o.elementwise ? ['--kernels', [...COMPUTE_KERNELS, ...ELEMENTWISE_KERNELS].join(',')] : [])];
}

function runJson(cmd: string, args: string[], source: string, timeoutS: number): KernelBench {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutS * 1000, maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${source}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${source} exited with ${r.status ?? r.signal}: ${(r.stderr || '').trim().split('\n').pop() ?? ''}`);
  return parseKernelBench(r.stdout, source);
}

/** build/vreflect_cuda_bench beside the addon's build folder (helper binary of the CUDA backend). */
export function defaultCudaBenchPath(): string | undefined {
  try {
    return path.join(path.dirname(path.dirname(addonPath())), 'vreflect_cuda_bench');
  } catch {
    return undefined;
  }
}

export function runGpuSide(o: { binary?: string; quick: boolean; elementwise?: boolean; timeoutS: number }): SideRun {
  const bin = o.binary ?? defaultCudaBenchPath();
  if (!bin || !fs.existsSync(bin)) return { side: 'gpu', skipped: `${bin ?? 'build/vreflect_cuda_bench'} not built (needs nvcc at install time)` };
  const drv = probeCuda({ freeMemory: false }).driver;
  if (!drv.devices.length) return { side: 'gpu', skipped: drv.error ?? 'no GPU' };
  try {
    return { side: 'gpu', bench: runJson(bin, ['--json', ...kernelArgs(o)], path.basename(bin), o.timeoutS) };
  } catch (e) {
    return { side: 'gpu', skipped: (e as Error).message };
  }
}

/** `script`: scripts_bench/torch_kernels.py of this package unless given. */
export function runTorchSide(o: { python?: string; script?: string; quick: boolean; elementwise?: boolean; timeoutS: number }): SideRun {
  const py = o.python ?? process.env.VREFLECT_PYTHON ?? 'python3';
  const script = o.script ?? findBenchScript('torch_kernels.py');
  if (!script || !fs.existsSync(script)) return { side: 'torch', skipped: `${script ?? 'scripts_bench/torch_kernels.py'} not found` };
  const check = spawnSync(py, ['-c', 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)'], { encoding: 'utf8', timeout: 120000 });
  if (check.error || check.status === null) return { side: 'torch', skipped: `${py} not runnable` };
  if (check.status === 3) return { side: 'torch', skipped: 'torch has no CUDA device here' };
  if (check.status !== 0) return { side: 'torch', skipped: `torch is not importable with ${py}` };
  try {
    return { side: 'torch', bench: runJson(py, [script, '--json', ...kernelArgs(o)], path.basename(script), o.timeoutS) };
  } catch (e) {
    return { side: 'torch', skipped: (e as Error).message };
  }
}
