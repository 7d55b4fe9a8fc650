// The machine figures measured through the addon (native/bench/*.h via native/addon/bench_binding.cc):
// read bandwidth, and GEMM throughput of the op layer's linear_forward on the shapes that dominate prefill.
import { loadAddon, NativeAddon, NativeInfo } from '../native/addon';
import { oneLine } from '../util/errors';

/**
 * The addon for the probes, with `threads` set. When it does not load, a run that measures our engine (`ours`) stops
 * with the loader's error; a PyTorch-only run says so and goes on without native probes.
 */
export function loadProbeAddon(threads: number, ours: boolean, say: (line: string) => void): { addon?: NativeAddon; info?: NativeInfo } {
  try {
    const addon = loadAddon();
    addon.setThreads(threads);
    return { addon, info: addon.info() };
  } catch (e) {
    if (ours) throw e;
    say(`native addon not loaded (${oneLine(e)}): no native probes`);
    return {};
  }
}

export interface BandwidthProbe {
  threads: number;
  bytes: number;
  kernel: string;
  bestGBps: number;
  medianGBps: number;
  runsGBps: number[];
}

export interface GemmProbe {
  m: number;
  n: number;
  k: number;
  dtype: 'bf16' | 'fp32';
  backend: string;
  bestMs: number;
  medianMs: number;
  gflops: number;
  repeats: number;
}

/** Square n=2048 (the usual "GEMM peak" yardstick) and the 7B's largest prefill GEMM (MLP up/gate at ~305 tokens). */
export const GEMM_SHAPES: [number, number, number][] = [
  [2048, 2048, 2048],
  [305, 18944, 3584],
];

/** The decode-shaped product: one token through lm_head (1 GB of bf16 weights, read once per call). */
export const GEMV_SHAPE: [number, number, number] = [1, 152064, 3584];

/** GB/s that our GEMV streams its weights at (bytes of W / best time): decode's kernel against the probe. */
export function probeGemv(addon: NativeAddon, seconds = 2): { gemm: GemmProbe; weightGBps: number } {
  const [m, n, k] = GEMV_SHAPE;
  const gemm = addon.benchGemm({ m, n, k, dtype: 'bf16', seconds, minRepeats: 3 }) as GemmProbe;
  return { gemm, weightGBps: (n * k * 2) / (gemm.bestMs * 1e-3) / 1e9 };
}

export function hasNativeProbes(addon: NativeAddon): boolean {
  return typeof addon.benchReadBandwidth === 'function' && typeof addon.benchGemm === 'function';
}

export function probeBandwidth(addon: NativeAddon, threads: number, bytes = 1024 ** 3, repeats = 20): BandwidthProbe {
  return addon.benchReadBandwidth({ bytes, repeats, threads }) as BandwidthProbe;
}

export function probeGemm(addon: NativeAddon, dtype: 'bf16' | 'fp32', seconds = 2): GemmProbe[] {
  return GEMM_SHAPES.map(([m, n, k]) => addon.benchGemm({ m, n, k, dtype, seconds, minRepeats: 3 }) as GemmProbe);
}
