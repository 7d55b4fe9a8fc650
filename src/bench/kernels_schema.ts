// The JSON every side of `vreflect bench kernels` speaks (our CPU probes here, build/vreflect_cuda_bench on a GPU,
// scripts_bench/torch_kernels.py): {"device":{name, cc?, memory_bytes?, driver?}, "date", "results":[{kernel,
// shape, dtype, causal?, ms, tflops, impl, tile?, gbs?, error?}]} (tile: the tensor-core attention's tile variant,
// `vreflect_cuda_bench --attention-tiles`; gbs: GB/s of the memory a memory-bound case must move,
// attention_decode's K/V cache). A case that could not run has ms = tflops = null and an "error"; it is kept aside
// in `failed`. parseKernelBench checks the rest and names the source in its errors.
/** The compute-bound kernels every side times by default (TFLOP/s). */
export const COMPUTE_KERNELS = ['attention_fwd', 'attention_bwd', 'attention_decode', 'cross_attention_fwd', 'cross_attention_bwd', 'gemm'] as const;
/**
 * The memory-bound kernels (`--elementwise`; GPU and PyTorch sides only: native/cuda/bench/bench_elementwise.cc,
 * scripts_bench/torch_elementwise.py), compared by GB/s of the bytes our kernel must move; their tflops is 0.
 */
export const ELEMENTWISE_KERNELS = [
  'swiglu_fwd', 'swiglu_bwd', 'rmsnorm_fwd', 'rmsnorm_bwd', 'rmsnorm_to_bf16', 'rope_fwd', 'rope_bwd', 'convert_f32_bf16',
  'convert_bf16_f32', 'cross_entropy', 'gelu_fwd', 'gelu_bwd', 'scatter_rows', 'kv_append', 'adamw',
] as const;
export const KERNELS = [...COMPUTE_KERNELS, ...ELEMENTWISE_KERNELS] as const;
export type KernelName = (typeof KERNELS)[number];

/** A memory-bound kernel: its figure is GB/s, not TFLOP/s. */
export function isElementwise(k: KernelName): boolean {
  return (ELEMENTWISE_KERNELS as readonly string[]).includes(k);
}

export interface KernelResult {
  kernel: KernelName;
  shape: Record<string, number>;
  dtype: string;
  causal?: boolean;
  ms: number;
  tflops: number;
  impl: string;
  /** GB/s of the memory the case must move (attention_decode: the K/V cache), where the producer reports it */
  gbs?: number;
  /** the tensor-core attention's tile variant that ran ("128x64w4s"), where the producer reports it */
  tile?: string;
}

export interface KernelBenchDevice {
  name: string;
  cc?: string;
  memory_bytes?: number;
  driver?: string | number;
  /** vreflect_cuda_bench: shared memory one block may opt in to, and the tensor-core attention tile variants that
   * VREFLECT_ATTENTION_TILE_FWD / _BWD run on this GPU (auto: the first of the preference that fits it) */
  smem_optin_bytes?: number;
  attention_tiles?: { fwd: string; bwd: string };
}

export interface KernelBench {
  device: KernelBenchDevice;
  date: string;
  results: KernelResult[];
  /** cases the producer could not run (out of memory, no cuBLASLt algorithm, ...) */
  failed: { kernel: string; shape: Record<string, number>; error: string }[];
}

export function parseKernelBench(text: string, source: string): KernelBench {
  // The whole output, else its last line that is a JSON object (tools may print warnings first).
  let j: any;
  try {
    j = JSON.parse(text);
  } catch {
    try {
      j = JSON.parse(text.trim().split('\n').filter((l) => l.trim().startsWith('{')).pop() ?? '');
    } catch {
      throw new Error(`${source}: output is not one JSON object`);
    }
  }
  const bad = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  if (!j || typeof j !== 'object') bad('output is not a JSON object');
  if (!j.device || typeof j.device.name !== 'string') bad('"device.name" is missing');
  if (!Array.isArray(j.results)) bad('"results" is not an array');
  const failed: KernelBench['failed'] = [];
  const results: KernelResult[] = [];
  j.results.forEach((r: any, i: number) => {
    if (!KERNELS.includes(r?.kernel)) bad(`results[${i}].kernel "${r?.kernel}" is not one of ${KERNELS.join(', ')}`);
    if (!r.shape || typeof r.shape !== 'object') bad(`results[${i}].shape is missing`);
    for (const [k, v] of Object.entries(r.shape)) if (typeof v !== 'number') bad(`results[${i}].shape.${k} is not a number`);
    if (r.ms === null && r.tflops === null) {
      failed.push({ kernel: r.kernel, shape: r.shape, error: String(r.error ?? 'did not run') });
      return;
    }
    for (const k of ['ms', 'tflops']) if (typeof r[k] !== 'number' || !Number.isFinite(r[k])) bad(`results[${i}].${k} is not a number`);
    if (typeof r.impl !== 'string') bad(`results[${i}].impl is missing`);
    if (r.gbs !== undefined && r.gbs !== null && (typeof r.gbs !== 'number' || !Number.isFinite(r.gbs))) bad(`results[${i}].gbs is not a number`);
    if (r.tile !== undefined && typeof r.tile !== 'string') bad(`results[${i}].tile is not a string`);
    results.push({
      kernel: r.kernel, shape: r.shape, dtype: String(r.dtype ?? ''), causal: typeof r.causal === 'boolean' ? r.causal : undefined, ms: r.ms, tflops: r.tflops, impl: r.impl,
      ...(typeof r.gbs === 'number' ? { gbs: r.gbs } : {}),
      ...(typeof r.tile === 'string' ? { tile: r.tile } : {}),
    });
  });
  return { device: j.device, date: String(j.date ?? ''), results, failed };
}

// Spellings of shape keys the three producers may use, mapped to one name so their rows line up.
const ALIASES: Record<string, string> = {
  seq: 'seq', seqlen: 'seq', seq_len: 'seq', l: 'seq', seq_q: 'seq',
  head_dim: 'head_dim', headdim: 'head_dim', d: 'head_dim',
  heads: 'heads', hq: 'heads', num_heads: 'heads', q_heads: 'heads', heads_q: 'heads',
  kv_heads: 'kv_heads', hkv: 'kv_heads', kvheads: 'kv_heads', num_kv_heads: 'kv_heads', heads_kv: 'kv_heads',
  queries: 'queries', nq: 'queries',
  keys: 'keys', nk: 'keys', n_keys: 'keys',
  batch: 'batch', items: 'batch',
};

export function normaliseShape(kernel: KernelName, shape: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(shape)) {
    const low = k.toLowerCase();
    if (low === 'embed_dim' || low === 'dim') continue; // = heads x head_dim, which every side gives
    if (low === 'seq_k' && shape.seq_q === v) continue; // self-attention: one length
    if ((low === 'batch' || low === 'items') && v === 1) continue; // one sequence / one item: the default
    const name = kernel === 'gemm' && ['m', 'n', 'k'].includes(low) ? low : kernel.startsWith('cross') && low === 'n' ? 'keys' : (ALIASES[low] ?? low);
    out[name] = v;
  }
  return out;
}

/** One row of the side-by-side table: kernel, shape and mask, whatever side measured it. */
export function rowKey(r: KernelResult): string {
  const s = normaliseShape(r.kernel, r.shape);
  const shape = Object.keys(s).sort().map((k) => `${k}=${s[k]}`).join(',');
  return `${r.kernel}|${shape}|${r.causal === undefined ? '' : r.causal ? 'causal' : 'full'}`;
}
